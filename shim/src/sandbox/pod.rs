//! One pod as the shim holds it: set up all at once or not at all, released at stop
//! (the namespaces, the /dev/shm, the holder), removed at shutdown (the files and links,
//! the cgroup once the holder is reaped).

use super::cgroup::{self, SandboxCgroup};
use super::files::PodFiles;
use super::spec::PodSpec;
use super::{cleanup, holder, sysctl};
use crate::sys::pod_ns::{self, PodNamespaces};
use crate::sys::reaper::Exit;
use crate::task::error::{Result, ShimError};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Where the sandbox is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Created,
    Ready,
    /// Stopped; the holder is being killed.
    Stopping,
    Stopped(Exit),
}

pub struct Pod {
    id: String,
    bundle: PathBuf,
    created_at: SystemTime,
    spec: PodSpec,
    /// The namespaces the main thread is in for the pod, until released.
    namespaces: Option<PodNamespaces>,
    /// The PID namespace's init, until reaped.
    holder: Option<u32>,
    cgroup: SandboxCgroup,
    files: Option<PodFiles>,
    phase: Phase,
}

impl Pod {
    /// Sets the pod up in the calling (main) thread's namespaces. On an error nothing is
    /// left: the thread is back in the shim's namespaces, no file, mount or cgroup stays.
    pub fn set_up(id: &str, bundle: &Path, spec: PodSpec) -> Result<Pod> {
        let mut pod = Pod {
            id: id.to_string(),
            bundle: bundle.to_path_buf(),
            created_at: SystemTime::now(),
            spec,
            namespaces: None,
            holder: None,
            cgroup: SandboxCgroup::default(),
            files: None,
            phase: Phase::Created,
        };
        match pod.build() {
            Ok(()) => Ok(pod),
            Err(e) => {
                pod.release();
                pod.remove();
                Err(e)
            }
        }
    }

    fn build(&mut self) -> Result<()> {
        let spec = &self.spec;
        let entered = pod_ns::enter(spec.netns.as_deref(), spec.own_ipc, spec.own_uts)
            .map_err(|e| ShimError::internal("entering the pod's namespaces", e))?;
        self.namespaces = Some(entered);
        if spec.own_uts && !spec.hostname.is_empty() {
            set_hostname(&spec.hostname)?;
        }
        let files = PodFiles::create(&self.bundle, &self.id, spec)
            .map_err(|e| ShimError::internal("making the pod's files", e))?;
        self.files = Some(files);
        for (key, value) in &spec.sysctls {
            sysctl::apply(key, value).map_err(ShimError::InvalidArgument)?;
        }
        if spec.shared_pid {
            self.start_holder()?;
        }
        Ok(())
    }

    /// The shared PID namespace's init, in the pod's cgroup when it has one.
    fn start_holder(&mut self) -> Result<()> {
        let parent = &self.spec.cgroup_parent;
        if !parent.is_empty() && !cgroup::is_systemd_slice(parent) {
            self.cgroup = SandboxCgroup::make(parent, &self.id).map_err(ShimError::Internal)?;
        } else if !parent.is_empty() {
            log::info!("{}: cgroup parent {parent} is a systemd slice: the holder stays in the shim's cgroup", self.id);
        }
        cleanup::record(&self.bundle, self.cgroup.made())
            .map_err(|e| ShimError::internal("recording the sandbox's cgroup", e))?;
        let pid = holder::spawn(&self.id, self.cgroup.procs_files())
            .map_err(|e| ShimError::internal("starting the sandbox", e))?;
        self.holder = Some(pid);
        Ok(())
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn created_at(&self) -> SystemTime {
        self.created_at
    }

    pub fn spec(&self) -> &PodSpec {
        &self.spec
    }

    /// The sandbox's pid, whose namespaces the pod's containers join: the holder's, or
    /// the shim's own. 0 once stopped.
    pub fn pid(&self) -> u32 {
        match self.phase {
            Phase::Stopping | Phase::Stopped(_) => 0,
            _ => self.holder.unwrap_or_else(std::process::id),
        }
    }

    pub fn holder_alive(&self) -> bool {
        self.holder.is_some()
    }

    /// Created becomes Ready.
    pub fn start(&mut self) -> Result<()> {
        match self.phase {
            Phase::Created => {
                self.phase = Phase::Ready;
                Ok(())
            }
            Phase::Ready => Ok(()),
            Phase::Stopping | Phase::Stopped(_) => Err(ShimError::FailedPrecondition(format!(
                "sandbox {} has stopped",
                self.id
            ))),
        }
    }

    /// Ends the sandbox: the holder is killed (with it every process of the shared PID
    /// namespace), the shim leaves the pod's namespaces and unmounts its /dev/shm. The
    /// sandbox has ended once the holder is reaped, at once without one.
    pub fn stop(&mut self) {
        if let Some(pid) = self.holder {
            // The holder is the shim's child and not yet reaped: the pid is still its.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        self.release();
        if matches!(self.phase, Phase::Created | Phase::Ready) {
            self.phase = match self.holder {
                Some(_) => Phase::Stopping,
                None => Phase::Stopped(Exit::now(std::process::id(), 0)),
            };
        }
    }

    /// Whether `exit` is the holder's; if so the sandbox has ended and the holder's
    /// cgroup goes.
    pub fn holder_exited(&mut self, exit: &Exit) -> bool {
        if self.holder != Some(exit.pid) {
            return false;
        }
        self.holder = None;
        self.cgroup.remove();
        cleanup::forget(&self.bundle);
        if !matches!(self.phase, Phase::Stopped(_)) {
            self.phase = Phase::Stopped(*exit);
        }
        true
    }

    /// Makes the links the CRI follows again, if it removed them (it does when it
    /// restarts).
    pub fn relink_files(&self) {
        if let Some(files) = self.files.as_ref().filter(|_| self.phase == Phase::Ready) {
            if let Err(e) = files.relink() {
                log::warn!("{}: linking the pod's files for the CRI: {e}", self.id);
            }
        }
    }

    /// Leaves the pod's namespaces and unmounts its /dev/shm.
    fn release(&mut self) {
        if let Some(entered) = self.namespaces.take() {
            if let Err(e) = pod_ns::leave(entered) {
                log::error!("{}: leaving the pod's namespaces: {e}", self.id);
            }
        }
        if let Some(files) = self.files.as_mut() {
            files.release_shm();
        }
    }

    /// Removes what the pod left: files, links, and the cgroup if the holder is gone.
    pub fn remove(&mut self) {
        if let Some(mut files) = self.files.take() {
            files.remove();
        }
        if self.holder.is_none() {
            self.cgroup.remove();
            cleanup::forget(&self.bundle);
        }
    }
}

/// Names the calling thread's UTS namespace (the pod's).
fn set_hostname(name: &str) -> Result<()> {
    // SAFETY: sethostname(2) reads `len` bytes from a live buffer.
    if unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(ShimError::InvalidArgument(format!(
            "setting hostname {name:?}: {e}"
        )));
    }
    Ok(())
}
