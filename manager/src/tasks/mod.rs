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

/// A shim's error as skiffd answers it: the kind its status carried (an UNIMPLEMENTED
/// Checkpoint of the libcontainer shim stays UNIMPLEMENTED), its own message.
fn shim_err(e: ttrpc::Error) -> Error {
    Error::Shim(skiff_errdefs::Remote::from(e))
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

#[cfg(test)]
mod tests {
    use super::shim_err;
    use skiff_errdefs::Kind;

    fn through_skiffd(code: ttrpc::Code, message: &str) -> ttrpc::Status {
        let from_shim = ttrpc::Error::RpcStatus(ttrpc::get_status(code, message));
        match ttrpc::Error::from(shim_err(from_shim)) {
            ttrpc::Error::RpcStatus(s) => s,
            other => panic!("skiffd answered {other:?}"),
        }
    }

    /// A shim's status reaches skiffd's client with its code and message: a refusal
    /// (UNIMPLEMENTED) or a full shim (RESOURCE_EXHAUSTED) is not an internal error.
    #[test]
    fn a_shims_error_reaches_the_client_as_the_shim_said_it() {
        for kind in [
            Kind::Unimplemented,
            Kind::ResourceExhausted,
            Kind::Unavailable,
            Kind::NotFound,
            Kind::FailedPrecondition,
            Kind::Unknown,
        ] {
            let s = through_skiffd(kind.code(), "libcontainer does not support checkpoint");
            assert_eq!(s.code(), kind.code(), "{kind:?}");
            assert_eq!(s.message(), "libcontainer does not support checkpoint");
        }
    }

    #[test]
    fn a_shim_that_cannot_be_reached_is_unavailable() {
        let gone = ttrpc::Error::Socket("connection refused".into());
        match ttrpc::Error::from(shim_err(gone)) {
            ttrpc::Error::RpcStatus(s) => assert_eq!(s.code(), ttrpc::Code::UNAVAILABLE),
            other => panic!("skiffd answered {other:?}"),
        }
    }
}
