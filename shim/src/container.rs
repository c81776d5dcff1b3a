//! One container the shim serves: its bundle, its runtime, its processes.

use crate::error::{Result, ShimError};
use crate::process::Process;
use runc_driver::OciRuntime;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, OnceLock};

pub struct Container {
    pub bundle: PathBuf,
    pub runtime: Arc<dyn OciRuntime>,
    /// The rootfs the shim mounted (and so unmounts), if the request gave mounts.
    pub rootfs: Option<PathBuf>,
    /// uid and gid for the pipes of its processes (runtime options IoUid/IoGid).
    pub io_owner: (u32, u32),
    /// The container's cgroup, found from its init when it was created, or when Start
    /// restored it from a checkpoint (until then a restored container has no process).
    pub cgroup: OnceLock<skiff_cgroups::Cgroup>,
    pub processes: Mutex<Processes>,
    /// Signalled whenever a process of the container exits.
    pub exited: Condvar,
}

pub struct Processes {
    pub init: Process,
    pub execs: HashMap<String, Process>,
}

impl Processes {
    pub fn get(&self, exec_id: &str) -> Result<&Process> {
        if exec_id.is_empty() {
            return Ok(&self.init);
        }
        self.execs
            .get(exec_id)
            .ok_or_else(|| ShimError::NotFound(format!("exec {exec_id:?} not found")))
    }

    pub fn get_mut(&mut self, exec_id: &str) -> Result<&mut Process> {
        if exec_id.is_empty() {
            return Ok(&mut self.init);
        }
        self.execs
            .get_mut(exec_id)
            .ok_or_else(|| ShimError::NotFound(format!("exec {exec_id:?} not found")))
    }
}
