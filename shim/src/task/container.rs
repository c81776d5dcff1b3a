//! One container the shim serves: its bundle, its runtime, its cgroup, and its processes
//! (the init and the execs), which are reached through it.

use crate::task::error::{Result, ShimError};
use crate::task::process::Process;
use skiff_oci_runtime::OciRuntime;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

pub struct Container {
    id: String,
    bundle: PathBuf,
    runtime: Arc<dyn OciRuntime>,
    /// The rootfs the shim mounted (and so unmounts), if the request gave mounts.
    rootfs: Option<PathBuf>,
    /// uid and gid for the pipes of its processes (runtime options IoUid/IoGid).
    io_owner: Option<(u32, u32)>,
    /// The container's cgroup, found from its init when it was created, or when Start
    /// restored it from a checkpoint (until then a restored container has no process).
    cgroup: OnceLock<skiff_cgroups::Cgroup>,
    /// Its processes are in a PID namespace it does not own (the host's, a pod's): when
    /// its init exits, the rest are killed (the kernel does that only for an own one).
    shares_pid_namespace: bool,
    processes: Mutex<Processes>,
}

struct Processes {
    init: Process,
    execs: HashMap<String, Process>,
}

/// What a container is made of, as Create found it.
pub struct Parts {
    pub id: String,
    pub bundle: PathBuf,
    pub runtime: Arc<dyn OciRuntime>,
    pub rootfs: Option<PathBuf>,
    pub io_owner: Option<(u32, u32)>,
    pub cgroup: Option<skiff_cgroups::Cgroup>,
    pub shares_pid_namespace: bool,
    pub init: Process,
}

impl Container {
    pub fn new(parts: Parts) -> Container {
        Container {
            id: parts.id,
            bundle: parts.bundle,
            runtime: parts.runtime,
            rootfs: parts.rootfs,
            io_owner: parts.io_owner,
            cgroup: parts.cgroup.map(OnceLock::from).unwrap_or_default(),
            shares_pid_namespace: parts.shares_pid_namespace,
            processes: Mutex::new(Processes {
                init: parts.init,
                execs: HashMap::new(),
            }),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn bundle(&self) -> &Path {
        &self.bundle
    }

    pub fn runtime(&self) -> &Arc<dyn OciRuntime> {
        &self.runtime
    }

    pub fn rootfs(&self) -> Option<&Path> {
        self.rootfs.as_deref()
    }

    pub fn io_owner(&self) -> Option<(u32, u32)> {
        self.io_owner
    }

    pub fn cgroup(&self) -> Option<&skiff_cgroups::Cgroup> {
        self.cgroup.get()
    }

    /// Records the cgroup of an init that came to be after Create (a restore); false if
    /// the container already had one.
    pub fn found_cgroup(&self, cgroup: skiff_cgroups::Cgroup) -> bool {
        self.cgroup.set(cgroup).is_ok()
    }

    pub fn shares_pid_namespace(&self) -> bool {
        self.shares_pid_namespace
    }

    /// Does `f` with the process `exec_id` names (the init for ""), or NOT_FOUND.
    pub fn with<R>(&self, exec_id: &str, f: impl FnOnce(&mut Process) -> Result<R>) -> Result<R> {
        let mut procs = self.processes.lock().unwrap();
        if exec_id.is_empty() {
            return f(&mut procs.init);
        }
        match procs.execs.get_mut(exec_id) {
            Some(p) => f(p),
            None => Err(ShimError::NotFound(format!("exec {exec_id:?} not found"))),
        }
    }

    /// Does `f` with the init process.
    pub fn with_init<R>(&self, f: impl FnOnce(&mut Process) -> R) -> R {
        f(&mut self.processes.lock().unwrap().init)
    }

    /// Adds an exec; refused while the init does not run or the id is taken.
    pub fn add_exec(&self, process: Process) -> Result<()> {
        let mut procs = self.processes.lock().unwrap();
        let status = procs.init.status();
        if status != crate::task::state::Status::Running {
            return Err(ShimError::FailedPrecondition(format!(
                "container {:?} is {status}: cannot exec in it",
                self.id
            )));
        }
        let exec_id = process.exec_id().unwrap_or_default().to_string();
        if procs.execs.contains_key(&exec_id) {
            return Err(ShimError::AlreadyExists(format!(
                "exec {exec_id:?} already exists in container {:?}",
                self.id
            )));
        }
        procs.execs.insert(exec_id, process);
        Ok(())
    }

    /// Removes an exec that has been deleted.
    pub fn remove_exec(&self, exec_id: &str) {
        self.processes.lock().unwrap().execs.remove(exec_id);
    }

    /// The exec whose process has this pid, if any.
    pub fn exec_with_pid(&self, pid: u32) -> Option<String> {
        let procs = self.processes.lock().unwrap();
        procs
            .execs
            .iter()
            .find(|(_, p)| p.pid() == pid)
            .map(|(id, _)| id.clone())
    }

    /// Releases the streams of every process: the container is gone.
    pub fn release_streams(&self) {
        let mut procs = self.processes.lock().unwrap();
        for exec in procs.execs.values_mut() {
            exec.release_streams();
        }
    }
}
