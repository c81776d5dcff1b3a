//! Cgroups a test made, found and removed in every hierarchy (cgroup v1's controllers,
//! the hybrid v2 mount, or the v2 root alone), also when the test fails.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The directories of the cgroup `relative` and of those below it, in every hierarchy,
/// children before their parents; none for a path that is empty or climbs out.
fn cgroup_subtree(relative: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(children) = fs::read_dir(dir) else {
            return;
        };
        for c in children.flatten() {
            if c.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                walk(&c.path(), out);
            }
        }
        out.push(dir.to_path_buf());
    }
    let relative = relative.trim_start_matches('/');
    if relative.is_empty() || relative.split('/').any(|c| c == "..") {
        return Vec::new();
    }
    let mut out = Vec::new();
    for base in cgroup_bases() {
        walk(&base.join(relative), &mut out);
    }
    out
}

/// Removes the cgroup `relative` and the directories below it from every hierarchy.
/// rmdir removes only empty cgroups, so a cgroup still in use is left alone.
pub fn remove_cgroup_tree(relative: &str) {
    for dir in cgroup_subtree(relative) {
        let _ = fs::remove_dir(dir);
    }
}

/// SIGKILLs every process in the cgroup `relative` and below, in every hierarchy, and
/// waits (up to 5 s) until they are gone. Only for cgroups a test owns.
pub fn kill_cgroup_tree(relative: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut found: Vec<i32> = cgroup_subtree(relative)
            .iter()
            .filter_map(|dir| fs::read_to_string(dir.join("cgroup.procs")).ok())
            .flat_map(|text| {
                text.lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect::<Vec<i32>>()
            })
            .collect();
        found.sort_unstable();
        found.dedup();
        if found.is_empty() || Instant::now() > deadline {
            return;
        }
        for pid in found {
            // SAFETY: kill(2) of a process in a cgroup the calling test owns.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Removes a test's cgroup parent (see [`remove_cgroup_tree`]) when dropped, also when
/// the test fails: runc removes a container's cgroup but not the parents it created.
pub struct CgroupCleanup(pub String);

impl Drop for CgroupCleanup {
    fn drop(&mut self) {
        remove_cgroup_tree(&self.0);
    }
}

/// Every cgroup hierarchy: the v2 root alone, or each v1 controller (and the hybrid
/// v2 mount) under /sys/fs/cgroup.
pub fn cgroup_bases() -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        return vec![root.to_path_buf()];
    }
    fs::read_dir(root)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir() && !p.is_symlink())
                .collect()
        })
        .unwrap_or_default()
}
