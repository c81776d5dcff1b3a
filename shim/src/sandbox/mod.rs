//! containerd's Sandbox API (`containerd.runtime.sandbox.v1.Sandbox`): with a runtime
//! whose `sandboxer = "shim"`, containerd's CRI starts the shim for a pod and asks it,
//! not a pause container, to hold what the pod's containers share.
//!
//! The shim holds the pod itself ([`pod`]): its main thread joins the pod's network
//! namespace and makes its IPC and UTS ones, so the shim's pid is the sandbox's and an
//! idle pod costs no process beyond the shim; only a pod whose containers share a PID
//! namespace has one more, that namespace's init ([`holder`]). The shim also sets the
//! pod's hostname and sysctls ([`sysctl`]), makes its /dev/shm and /etc files
//! ([`files`]), puts the holder in the pod's cgroup ([`cgroup`]), reports the sandbox's
//! end, status and metrics, and exits at ShutdownSandbox once its containers are gone.
//!
//! Every RPC runs on the event loop, which is the main thread: the namespaces must be
//! changed there. Each RPC is a file of `ops/`.

pub mod cgroup;
pub mod cleanup;
pub mod files;
pub mod holder;
mod ops;
pub mod pod;
pub mod spec;
pub mod sysctl;

use crate::sys::reaper::Exit;
use crate::task::error::{Result, ShimError};
use crate::task::TaskService;
use pod::Pod;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The service's name on the wire.
pub const SERVICE: &str = "containerd.runtime.sandbox.v1.Sandbox";
/// How long a shim told to shut down waits for its PID namespace holder to be reaped.
const HOLDER_GRACE: Duration = Duration::from_secs(5);

pub struct SandboxService {
    tasks: Arc<TaskService>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The sandbox this shim serves, once created.
    pod: Option<Pod>,
    /// When ShutdownSandbox was granted.
    shutdown: Option<Instant>,
}

impl SandboxService {
    pub fn new(tasks: Arc<TaskService>) -> SandboxService {
        SandboxService {
            tasks,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// Exits the loop reaped: the holder's ends the sandbox; the others are returned, for
    /// the task model.
    pub fn reaped(&self, exits: Vec<Exit>) -> Vec<Exit> {
        let mut state = self.state();
        let Some(pod) = state.pod.as_mut() else {
            return exits;
        };
        exits
            .into_iter()
            .filter(|exit| !pod.holder_exited(exit))
            .collect()
    }

    /// Whether the serving loop may end. A shim serving a sandbox ends at its
    /// ShutdownSandbox (once its PID namespace holder is reaped), never at the Task API's
    /// Shutdown, which containerd 2.1 and 2.2 send after each of the pod's containers is
    /// deleted; a shim serving no sandbox ends as the Task API says.
    pub fn shim_may_exit(&self, task_shutdown: bool) -> bool {
        let state = self.state();
        match (state.shutdown, &state.pod) {
            (Some(at), Some(pod)) if pod.holder_alive() => {
                let late = at.elapsed() > HOLDER_GRACE;
                if late {
                    log::error!("exiting with the pod's PID namespace holder not reaped");
                }
                late
            }
            (Some(_), _) => true,
            (None, Some(_)) => false,
            (None, None) => task_shutdown,
        }
    }

    /// The sandbox named by a request.
    fn with_pod<T>(&self, id: &str, f: impl FnOnce(&mut Pod) -> Result<T>) -> Result<T> {
        let mut state = self.state();
        match state.pod.as_mut() {
            Some(pod) if pod.id() == id => f(pod),
            _ => Err(ShimError::NotFound(format!("sandbox {id:?} not found"))),
        }
    }
}
