//! The runtime option ShimCgroup: the serving shim is moved into that cgroup (on cgroup
//! v1, in every hierarchy where the path exists; on v2, the unified one), so its memory
//! is accounted where the pod's is.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub const ROOT: &str = "/sys/fs/cgroup";

/// Each hierarchy's root, in order: the v2 one, or every v1 one (and a hybrid's unified
/// one).
pub fn hierarchies() -> io::Result<Vec<PathBuf>> {
    let root = Path::new(ROOT);
    if root.join("cgroup.controllers").exists() {
        return Ok(vec![root.to_path_buf()]);
    }
    let mut dirs: Vec<PathBuf> = fs::read_dir(root)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !p.is_symlink())
        .collect();
    dirs.sort();
    Ok(dirs)
}

pub fn join(cgroup: &str, pid: u32) -> Result<(), String> {
    let relative = cgroup.trim_start_matches('/');
    if relative.split('/').any(|c| c == "..") {
        return Err(format!("shim cgroup {cgroup:?} must not contain '..'"));
    }
    let mut joined = 0;
    for h in hierarchies().map_err(|e| format!("reading {ROOT}: {e}"))? {
        let procs = h.join(relative).join("cgroup.procs");
        if procs.exists() {
            fs::write(&procs, pid.to_string())
                .map_err(|e| format!("joining shim cgroup {}: {e}", procs.display()))?;
            joined += 1;
        }
    }
    if joined == 0 {
        return Err(format!(
            "shim cgroup {cgroup:?} does not exist in any hierarchy"
        ));
    }
    Ok(())
}
