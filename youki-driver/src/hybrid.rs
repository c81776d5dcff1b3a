//! The cgroup hierarchies a container's processes join beyond the controllers
//! libcgroups manages, on a cgroup v1 host: systemd's named hierarchy (`name=systemd`)
//! and, on a hybrid host, the unified (v2) tree mounted beside the controllers. runc's
//! cgroupfs manager puts every process of a container in both, at the container's
//! cgroup path; libcgroups 0.7 joins controller hierarchies only, which left the
//! container's processes in the shim's own systemd cgroup (systemd counted them as the
//! shim's, and the container's `/proc/PID/cgroup` said so).
//!
//! The forked helper joins these groups itself before libcontainer clones the
//! container's process, which inherits them; the groups are removed with the container.
//! With the systemd cgroup manager, or on a cgroup v2 host, there is nothing to do:
//! systemd places the scope, and libcgroups manages the unified tree.

use std::io;
use std::path::{Path, PathBuf};

/// Where the container's groups are in the hierarchies libcgroups leaves alone: empty
/// when `cgroups_path` is not a plain path (a systemd `slice:prefix:name`).
pub(crate) fn groups(cgroups_path: &Path) -> Vec<PathBuf> {
    let relative = match cgroups_path.to_str() {
        Some(p) if !p.contains(':') => p.trim_start_matches('/'),
        _ => return Vec::new(),
    };
    if relative.is_empty() {
        return Vec::new();
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    unmanaged_mounts(&mountinfo)
        .into_iter()
        .map(|m| m.join(relative))
        .collect()
}

/// The mount points of the named systemd hierarchy and, beside v1 controllers, of the
/// unified tree.
fn unmanaged_mounts(mountinfo: &str) -> Vec<PathBuf> {
    let mut v1 = false;
    let mut found = Vec::new();
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(dash) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        let (Some(point), Some(fstype), Some(options)) =
            (fields.get(4), fields.get(dash + 1), fields.get(dash + 3))
        else {
            continue;
        };
        match *fstype {
            "cgroup" if options.split(',').any(|o| o == "name=systemd") => {
                found.push(PathBuf::from(point));
            }
            "cgroup" => v1 = true,
            "cgroup2" => found.push(PathBuf::from(point)),
            _ => {}
        }
    }
    if !v1 {
        return Vec::new();
    }
    found
}

/// Moves the calling process into `groups`, making them as needed.
pub(crate) fn join(groups: &[PathBuf]) -> io::Result<()> {
    for group in groups {
        std::fs::create_dir_all(group)?;
        std::fs::write(group.join("cgroup.procs"), b"0")
            .map_err(|e| io::Error::new(e.kind(), format!("joining {}: {e}", group.display())))?;
    }
    Ok(())
}

/// Removes `groups` (each once empty; what still has processes stays).
pub(crate) fn remove(groups: &[PathBuf]) {
    for group in groups {
        let _ = std::fs::remove_dir(group);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid shared:11 - cgroup cgroup rw,xattr,name=systemd
35 30 0:31 / /sys/fs/cgroup/memory rw,nosuid shared:15 - cgroup cgroup rw,memory
";

    #[test]
    fn a_hybrid_host_has_the_named_systemd_and_the_unified_trees() {
        assert_eq!(
            unmanaged_mounts(HYBRID),
            [
                PathBuf::from("/sys/fs/cgroup/unified"),
                PathBuf::from("/sys/fs/cgroup/systemd")
            ]
        );
    }

    #[test]
    fn a_cgroup_v2_host_has_none() {
        let v2 = "30 25 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        assert!(unmanaged_mounts(v2).is_empty());
    }

    #[test]
    fn a_systemd_cgroups_path_needs_nothing() {
        assert!(groups(Path::new("system.slice:skiff:c1")).is_empty());
        assert!(groups(Path::new("/")).is_empty());
    }
}
