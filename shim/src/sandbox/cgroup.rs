//! The sandbox in the pod's cgroup: the holder of a shared PID namespace goes to
//! `<cgroup parent>/<sandbox id>`, where the CRI puts a pause container (cgroupfs paths:
//! in every v1 hierarchy, or the v2 one), and the directories made for it are removed
//! when it has ended. The pod's cgroup itself is also what the sandbox's metrics are read
//! from. A systemd slice as parent (the systemd cgroup driver) would need a scope made
//! over D-Bus: the holder then stays in the shim's cgroup.

use skiff_cgroups::Cgroup;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::sys::shim_cgroup::ROOT;

/// The directories made for the sandbox, deepest last.
#[derive(Debug, Default)]
pub struct SandboxCgroup {
    made: Vec<PathBuf>,
    leaves: Vec<PathBuf>,
}

/// Whether `parent` names a systemd slice rather than a cgroupfs path.
pub fn is_systemd_slice(parent: &str) -> bool {
    parent.ends_with(".slice") && !parent.contains('/')
}

/// Each hierarchy's root (none where /sys/fs/cgroup cannot be read).
fn hierarchies() -> Vec<PathBuf> {
    crate::sys::shim_cgroup::hierarchies().unwrap_or_default()
}

impl SandboxCgroup {
    /// Makes `<parent>/<id>` in every hierarchy; on an error, what was made is removed
    /// again. The holder moves itself in before it runs ([`SandboxCgroup::procs_files`]).
    pub fn make(parent: &str, id: &str) -> Result<SandboxCgroup, String> {
        let mut cgroup = SandboxCgroup::default();
        let relative = Path::new(parent.trim_start_matches('/')).join(id);
        for h in hierarchies() {
            if let Err(e) = cgroup.make_in(&h, &relative) {
                cgroup.remove();
                return Err(e);
            }
        }
        Ok(cgroup)
    }

    fn make_in(&mut self, hierarchy: &Path, relative: &Path) -> Result<(), String> {
        let mut dir = hierarchy.to_path_buf();
        for part in relative.components() {
            dir.push(part);
            match fs::create_dir(&dir) {
                Ok(()) => {
                    self.made.push(dir.clone());
                    inherit_cpuset(&dir)?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(format!("creating cgroup {}: {e}", dir.display())),
            }
        }
        self.leaves.push(dir.join("cgroup.procs"));
        Ok(())
    }

    /// The `cgroup.procs` files of the sandbox's cgroup, one per hierarchy.
    pub fn procs_files(&self) -> &[PathBuf] {
        &self.leaves
    }

    /// Removes the directories made, deepest first; a parent something else has come to
    /// use (a container's cgroup beside the sandbox's) stays.
    pub fn remove(&mut self) {
        self.leaves.clear();
        for dir in self.made.drain(..).rev() {
            let _ = fs::remove_dir(&dir);
        }
    }

    /// The directories made, to find them again after the shim is gone.
    pub fn made(&self) -> &[PathBuf] {
        &self.made
    }
}

/// A new cgroup v1 cpuset starts with no CPUs and no memory nodes, and no process can
/// join it (ENOSPC): it gets its parent's, as runc gives a container's. (On v2 an empty
/// cpuset means the parent's, and the root has no `cpuset.cpus` to copy.)
fn inherit_cpuset(dir: &Path) -> Result<(), String> {
    if dir.join("cgroup.controllers").exists() {
        return Ok(());
    }
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let own = dir.join(file);
        let Ok(current) = fs::read_to_string(&own) else {
            continue;
        };
        if !current.trim().is_empty() {
            continue;
        }
        let parent = dir.parent().map(|p| p.join(file)).unwrap_or_default();
        let value = fs::read_to_string(&parent)
            .map_err(|e| format!("reading {}: {e}", parent.display()))?;
        fs::write(&own, value.trim()).map_err(|e| format!("writing {}: {e}", own.display()))?;
    }
    Ok(())
}

/// The pod's cgroup (its parent, cgroupfs path) as the cgroups crate reads it.
pub fn of_parent(parent: &str) -> Option<Cgroup> {
    if parent.is_empty() || is_systemd_slice(parent) {
        return None;
    }
    let relative = parent.trim_start_matches('/');
    let root = Path::new(ROOT);
    if root.join("cgroup.controllers").exists() {
        let dir = root.join(relative);
        return dir.is_dir().then(|| Cgroup::v2(dir));
    }
    let mut dirs = HashMap::new();
    for h in hierarchies() {
        let dir = h.join(relative);
        if !dir.is_dir() {
            continue;
        }
        let name = h
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for controller in name.split(',') {
            dirs.insert(controller.to_string(), dir.clone());
        }
    }
    (!dirs.is_empty()).then(|| Cgroup::v1(dirs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_are_told_from_paths() {
        assert!(is_systemd_slice("kubepods-besteffort-pod1.slice"));
        assert!(!is_systemd_slice("/kubepods/besteffort/pod1"));
        assert!(!is_systemd_slice("/kubepods.slice/pod1"));
    }
}
