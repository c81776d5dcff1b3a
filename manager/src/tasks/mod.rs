//! Tasks: a container's processes, run through its runtime's shim. skiffd makes the
//! bundle (the stored spec, and the snapshot's mounts for Create), starts the shim as
//! containerd would, and records which shim serves the task, so that after a restart
//! it reconnects, or, when the shim is gone, runs the binary's `delete` and records the
//! exit.
//!
//! `create` (claiming the task, starting the shim, discarding what a failure left),
//! `delete`, `calls` (the calls a shim answers), `state` (what a task is now),
//! `recover` (at start), `rows` (the tasks table), `bundle`, `locks` (one life-cycle
//! operation per container at a time).

mod bundle;
mod calls;
mod create;
mod delete;
mod locks;
mod output;
mod recover;
mod rows;
mod state;

use crate::error::{Error, Result};
use crate::event_log::EventLog;
use crate::shim::Launcher;
use crate::store::Store;
use skiff_protos::task::Status;
use skiff_shim_client::TaskClient;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use create::NewTask;

/// The FIFO directory's name in the state directory.
pub const FIFO_DIR: &str = "fifo";

const CALL: Duration = Duration::from_secs(60);
const WAIT: Duration = Duration::from_secs(365 * 24 * 3600);

/// An exec to add to a running task.
pub struct NewExec {
    pub exec_id: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub terminal: bool,
    /// stdin, stdout, stderr: FIFO paths or log URIs.
    pub stdio: [String; 3],
}

/// A task as skiffd knows it.
#[derive(Debug, Clone, Default)]
pub struct TaskInfo {
    pub container_id: String,
    pub exec_id: String,
    pub pid: u32,
    pub status: String,
    pub exit_status: u32,
    pub exited_at: i64,
    pub runtime: String,
    pub image: String,
}

/// Where detached tasks' output goes, and its cap.
pub struct LogConfig {
    /// `ROOT/logs`: a container's log is `NS/ID/output.log` under it.
    pub dir: PathBuf,
    pub max_size: u64,
}

pub struct Tasks {
    store: Arc<Store>,
    logs: LogConfig,
    launcher: Launcher,
    state: PathBuf,
    pub events: Arc<EventLog>,
    shims: Mutex<HashMap<(String, String), Arc<TaskClient>>>,
    locks: locks::ContainerLocks,
}

/// Calls to a shim, their latency recorded for the metrics endpoint.
pub(crate) trait TimedCall {
    fn timed_call<Req: protobuf::Message, Resp: protobuf::Message>(
        &self,
        method: &str,
        req: &Req,
        timeout: Duration,
    ) -> ttrpc::Result<Resp>;
}

impl TimedCall for TaskClient {
    fn timed_call<Req: protobuf::Message, Resp: protobuf::Message>(
        &self,
        method: &str,
        req: &Req,
        timeout: Duration,
    ) -> ttrpc::Result<Resp> {
        let started = std::time::Instant::now();
        let result = self.call(method, req, timeout);
        crate::metrics::shim_call(method, started.elapsed());
        result
    }
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::CREATED => "created",
        Status::RUNNING => "running",
        Status::STOPPED => "stopped",
        Status::PAUSED | Status::PAUSING => "paused",
        _ => "unknown",
    }
}

fn shim_err(e: ttrpc::Error) -> Error {
    match e {
        ttrpc::Error::RpcStatus(s) => {
            let msg = s.message().to_string();
            match s.code() {
                ttrpc::Code::NOT_FOUND => Error::NotFound(msg),
                ttrpc::Code::ALREADY_EXISTS => Error::AlreadyExists(msg),
                ttrpc::Code::INVALID_ARGUMENT => Error::InvalidArgument(msg),
                ttrpc::Code::FAILED_PRECONDITION => Error::FailedPrecondition(msg),
                _ => Error::Io(msg),
            }
        }
        other => Error::Io(format!("the shim: {other}")),
    }
}

impl Tasks {
    pub fn new(
        store: Arc<Store>,
        launcher: Launcher,
        state: &Path,
        events: Arc<EventLog>,
        logs: LogConfig,
    ) -> Tasks {
        Tasks {
            store,
            logs,
            launcher,
            state: state.to_path_buf(),
            events,
            shims: Mutex::new(HashMap::new()),
            locks: Default::default(),
        }
    }

    fn bundle_of(&self, ns: &str, id: &str) -> PathBuf {
        self.state.join("bundles").join(ns).join(id)
    }

    /// Where clients make their stdio FIFOs (made and checked at start).
    pub fn fifo_dir(&self) -> PathBuf {
        self.state.join(FIFO_DIR)
    }

    /// The directory of a container's log (kept until the container is removed).
    pub fn log_dir(&self, ns: &str, id: &str) -> PathBuf {
        self.logs.dir.join(ns).join(id)
    }

    fn output(&self, ns: &str, id: &str) -> output::Output {
        output::Output::of(&self.bundle_of(ns, id), self.log_dir(ns, id))
    }

    pub(super) fn shim(&self, ns: &str, id: &str) -> Result<Arc<TaskClient>> {
        if let Some(c) = self
            .shims
            .lock()
            .unwrap()
            .get(&(ns.to_string(), id.to_string()))
        {
            return Ok(c.clone());
        }
        self.row(ns, id)?;
        Err(Error::FailedPrecondition(format!(
            "the shim of {id:?} is gone; delete the task"
        )))
    }

    fn forget_shim(&self, ns: &str, id: &str) {
        self.shims
            .lock()
            .unwrap()
            .remove(&(ns.to_string(), id.to_string()));
    }
}
