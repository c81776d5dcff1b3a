//! The runtime option ShimCgroup: the serving shim is moved into that cgroup (on cgroup
//! v1, in every hierarchy where the path exists; on v2, the unified one), so its memory
//! is accounted where the pod's is.

use std::fs;
use std::path::Path;

const ROOT: &str = "/sys/fs/cgroup";

pub fn join(cgroup: &str, pid: u32) -> Result<(), String> {
    let relative = cgroup.trim_start_matches('/');
    if relative.split('/').any(|c| c == "..") {
        return Err(format!("shim cgroup {cgroup:?} must not contain '..'"));
    }
    let root = Path::new(ROOT);
    let hierarchies: Vec<_> = if root.join("cgroup.controllers").exists() {
        vec![root.to_path_buf()]
    } else {
        fs::read_dir(root)
            .map_err(|e| format!("reading {ROOT}: {e}"))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir() && !p.is_symlink())
            .collect()
    };
    let mut joined = 0;
    for h in hierarchies {
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
