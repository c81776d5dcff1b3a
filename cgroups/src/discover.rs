//! Where a process's cgroup is: /proc/PID/cgroup names its path in each hierarchy, and
//! the mount table says where each hierarchy is mounted.

use crate::metrics::Metrics;
use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// A cgroup: on v1, one directory per controller; on v2, one directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cgroup {
    V1 { dirs: HashMap<String, PathBuf> },
    V2 { dir: PathBuf },
}

struct Mount {
    root: String,
    point: PathBuf,
    fstype: String,
    super_options: Vec<String>,
}

fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            Some(Mount {
                root: left.get(3)?.to_string(),
                point: PathBuf::from(left.get(4)?),
                fstype: right.first()?.to_string(),
                super_options: right
                    .get(2)
                    .map(|o| o.split(',').map(str::to_string).collect())
                    .unwrap_or_default(),
            })
        })
        .collect()
}

impl Cgroup {
    /// The cgroup of a live process. Controllers count on v1 when mounted; on a hybrid
    /// machine the v2 hierarchy is used only if it has controllers enabled.
    pub fn of_pid(pid: u32) -> io::Result<Cgroup> {
        let membership = fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
        let mounts = fs::read_to_string("/proc/self/mountinfo")?;
        Cgroup::resolve(&membership, &parse_mountinfo(&mounts)).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no mounted cgroup hierarchy holds pid {pid}"),
            )
        })
    }

    fn resolve(membership: &str, mounts: &[Mount]) -> Option<Cgroup> {
        let mut dirs = HashMap::new();
        let mut unified = None;
        for line in membership.lines() {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            if controllers.is_empty() {
                let m = mounts.iter().find(|m| m.fstype == "cgroup2")?;
                unified = Some(join(&m.point, &m.root, path));
                continue;
            }
            for controller in controllers.split(',') {
                if let Some(m) = mounts.iter().find(|m| {
                    m.fstype == "cgroup" && m.super_options.iter().any(|o| o == controller)
                }) {
                    dirs.insert(controller.to_string(), join(&m.point, &m.root, path));
                }
            }
        }
        if dirs.contains_key("memory") || dirs.contains_key("cpuacct") {
            return Some(Cgroup::V1 { dirs });
        }
        unified.map(|dir| Cgroup::V2 { dir })
    }

    /// A v2 cgroup at a known directory.
    pub fn v2(dir: impl Into<PathBuf>) -> Cgroup {
        Cgroup::V2 { dir: dir.into() }
    }

    /// A v1 cgroup from controller directories.
    pub fn v1(dirs: HashMap<String, PathBuf>) -> Cgroup {
        Cgroup::V1 { dirs }
    }

    pub fn metrics(&self) -> Metrics {
        match self {
            Cgroup::V1 { dirs } => Metrics::V1(crate::v1::metrics(dirs)),
            Cgroup::V2 { dir } => Metrics::V2(crate::v2::metrics(dir)),
        }
    }

    /// A directory of the cgroup: on v1 one of its hierarchies', the memory one if
    /// mounted.
    pub fn any_dir(&self) -> Option<&Path> {
        match self {
            Cgroup::V1 { dirs } => self
                .memory_dir()
                .or_else(|| dirs.values().next().map(PathBuf::as_path)),
            Cgroup::V2 { dir } => Some(dir),
        }
    }

    /// The directory of the memory controller.
    pub fn memory_dir(&self) -> Option<&Path> {
        match self {
            Cgroup::V1 { dirs } => dirs.get("memory").map(PathBuf::as_path),
            Cgroup::V2 { dir } => Some(dir),
        }
    }

    /// How many processes of the cgroup the OOM killer has killed so far.
    pub fn oom_kills(&self) -> Option<u64> {
        let dir = self.memory_dir()?;
        let file = match self {
            Cgroup::V1 { .. } => "memory.oom_control",
            Cgroup::V2 { .. } => "memory.events",
        };
        crate::read::table(dir, file).get("oom_kill").copied()
    }
}

/// The directory of `path` (relative to the hierarchy's root) under a mount of `root`.
fn join(point: &Path, root: &str, path: &str) -> PathBuf {
    let relative = path.strip_prefix(root).unwrap_or(path);
    point.join(relative.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTS: &str = "\
30 23 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw
33 30 0:29 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
35 30 0:31 / /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids
";

    #[test]
    fn hybrid_membership_uses_the_v1_controllers() {
        let membership = "12:pids:/default/web\n5:cpu,cpuacct:/default/web\n4:memory:/default/web\n0::/default/web\n";
        let cg = Cgroup::resolve(membership, &parse_mountinfo(MOUNTS)).unwrap();
        let Cgroup::V1 { dirs } = cg else {
            panic!("expected v1")
        };
        assert_eq!(
            dirs["memory"],
            Path::new("/sys/fs/cgroup/memory/default/web")
        );
        assert_eq!(
            dirs["cpuacct"],
            Path::new("/sys/fs/cgroup/cpu,cpuacct/default/web")
        );
        assert_eq!(dirs["pids"], Path::new("/sys/fs/cgroup/pids/default/web"));
    }

    #[test]
    fn unified_membership() {
        let mounts = "29 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        let cg = Cgroup::resolve("0::/k8s.io/abc\n", &parse_mountinfo(mounts)).unwrap();
        assert_eq!(cg, Cgroup::v2("/sys/fs/cgroup/k8s.io/abc"));
    }

    #[test]
    fn a_mount_of_a_subtree_is_accounted_for() {
        let mounts = "40 23 0:26 /outer /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let cg = Cgroup::resolve("0::/outer/inner\n", &parse_mountinfo(mounts)).unwrap();
        assert_eq!(cg, Cgroup::v2("/sys/fs/cgroup/inner"));
    }
}
