//! The Task API as a manager calls it: under the service name the shim's bootstrap chose
//! (task v2, or v3 when a shim says so), every call timed for the latency table.

use protobuf::Message;
use skiff_protos::shim::*;
use skiff_shim_client::{Bootstrap, TaskClient};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use ttrpc::Code;

/// How long a call may take before the harness gives up on the shim.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// How long Wait may block: the containers the scenarios run end well within it.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Durations of successful calls, by RPC name, for one shim binary.
#[derive(Clone, Default)]
pub struct Timings(Arc<Mutex<BTreeMap<String, Vec<Duration>>>>);

impl Timings {
    pub fn record(&self, name: &str, took: Duration) {
        let mut map = self.0.lock().unwrap();
        map.entry(name.to_string()).or_default().push(took);
    }

    /// (name, median, number of calls), by name.
    pub fn medians(&self) -> Vec<(String, Duration, usize)> {
        let map = self.0.lock().unwrap();
        map.iter()
            .map(|(name, all)| {
                let mut sorted = all.clone();
                sorted.sort();
                (name.clone(), sorted[sorted.len() / 2], sorted.len())
            })
            .collect()
    }
}

/// A failed call: which RPC, the status code the shim answered (none when the
/// transport failed), and its message.
#[derive(Debug, Clone)]
pub struct RpcError {
    pub method: &'static str,
    pub code: Option<Code>,
    pub message: String,
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(code) => write!(f, "{} failed: {:?}: {}", self.method, code, self.message),
            None => write!(f, "{} failed: {}", self.method, self.message),
        }
    }
}

pub type RpcResult<T> = Result<T, RpcError>;

pub struct TaskApi {
    client: TaskClient,
    timings: Timings,
}

impl TaskApi {
    /// Connects to `address` (`unix://PATH`); `version` is the Task API version the
    /// shim's bootstrap announced.
    pub fn connect(boot: &Bootstrap, timings: Timings) -> Result<TaskApi, String> {
        Ok(TaskApi {
            client: TaskClient::connect(boot)?,
            timings,
        })
    }

    fn call<Req: Message, Resp: Message>(
        &self,
        method: &'static str,
        req: &Req,
        timeout: Duration,
    ) -> RpcResult<Resp> {
        let fail = |code, message: String| RpcError {
            method,
            code,
            message,
        };
        let started = Instant::now();
        let response = self
            .client
            .call(method, req, timeout)
            .map_err(|e| match e {
                ttrpc::Error::RpcStatus(s) => fail(Some(s.code()), s.message().to_string()),
                other => fail(None, other.to_string()),
            })?;
        // Wait lasts as long as the container runs: not a latency of the shim.
        if method != "Wait" {
            self.timings.record(method, started.elapsed());
        }
        Ok(response)
    }

    pub fn create(&self, r: &CreateTaskRequest) -> RpcResult<CreateTaskResponse> {
        self.call("Create", r, CALL_TIMEOUT)
    }
    pub fn start(&self, r: &StartRequest) -> RpcResult<StartResponse> {
        self.call("Start", r, CALL_TIMEOUT)
    }
    pub fn delete(&self, r: &DeleteRequest) -> RpcResult<DeleteResponse> {
        self.call("Delete", r, CALL_TIMEOUT)
    }
    pub fn pids(&self, r: &PidsRequest) -> RpcResult<PidsResponse> {
        self.call("Pids", r, CALL_TIMEOUT)
    }
    pub fn pause(&self, r: &PauseRequest) -> RpcResult<()> {
        self.call::<_, Empty>("Pause", r, CALL_TIMEOUT).map(drop)
    }
    pub fn resume(&self, r: &ResumeRequest) -> RpcResult<()> {
        self.call::<_, Empty>("Resume", r, CALL_TIMEOUT).map(drop)
    }
    pub fn checkpoint(&self, r: &CheckpointTaskRequest) -> RpcResult<()> {
        self.call::<_, Empty>("Checkpoint", r, CALL_TIMEOUT)
            .map(drop)
    }
    pub fn kill(&self, r: &KillRequest) -> RpcResult<()> {
        self.call::<_, Empty>("Kill", r, CALL_TIMEOUT).map(drop)
    }
    pub fn exec(&self, r: &ExecProcessRequest) -> RpcResult<()> {
        self.call::<_, Empty>("Exec", r, CALL_TIMEOUT).map(drop)
    }
    pub fn resize_pty(&self, r: &ResizePtyRequest) -> RpcResult<()> {
        self.call::<_, Empty>("ResizePty", r, CALL_TIMEOUT)
            .map(drop)
    }
    pub fn close_io(&self, r: &CloseIORequest) -> RpcResult<()> {
        self.call::<_, Empty>("CloseIO", r, CALL_TIMEOUT).map(drop)
    }
    pub fn update(&self, r: &UpdateTaskRequest) -> RpcResult<()> {
        self.call::<_, Empty>("Update", r, CALL_TIMEOUT).map(drop)
    }
    pub fn wait(&self, r: &WaitRequest) -> RpcResult<WaitResponse> {
        self.call("Wait", r, WAIT_TIMEOUT)
    }
    pub fn wait_for(&self, r: &WaitRequest, timeout: Duration) -> RpcResult<WaitResponse> {
        self.call("Wait", r, timeout)
    }
    pub fn stats(&self, r: &StatsRequest) -> RpcResult<StatsResponse> {
        self.call("Stats", r, CALL_TIMEOUT)
    }
    pub fn connect_rpc(&self, r: &ConnectRequest) -> RpcResult<ConnectResponse> {
        self.call("Connect", r, CALL_TIMEOUT)
    }
    pub fn shutdown(&self, r: &ShutdownRequest) -> RpcResult<()> {
        self.call::<_, Empty>("Shutdown", r, CALL_TIMEOUT).map(drop)
    }
    pub fn state(&self, r: &StateRequest) -> RpcResult<StateResponse> {
        self.call("State", r, CALL_TIMEOUT)
    }
}

type Empty = protobuf::well_known_types::empty::Empty;
