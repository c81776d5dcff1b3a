//! The connection to skiffd every command works with, and what the calls share:
//! deadlines, error text, request shapes.

use skiff_protos::manager::{InfoRequest, KillTaskRequest, TaskRequest};
use skiff_protos::manager_ttrpc::{DaemonClient, TasksClient};
use std::path::PathBuf;
use std::time::Duration;

pub const SHORT: Duration = Duration::from_secs(120);
pub const LONG: Duration = Duration::from_secs(1800);
pub const FOREVER: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

pub struct Conn {
    pub client: ttrpc::Client,
    pub ns: String,
}

impl Conn {
    pub fn open(address: &str, ns: &str) -> Result<Conn, String> {
        let client = ttrpc::Client::connect(&format!("unix://{address}"))
            .map_err(|e| format!("cannot reach skiffd at {address}: {e}"))?;
        Ok(Conn {
            client,
            ns: ns.to_string(),
        })
    }

    /// Where the CLI makes its FIFOs: the directory skiffd made for them (private to
    /// root, which `attach::Fifos` checks again), never one beside the socket, which
    /// may be in a directory anyone can write.
    pub fn fifo_base(&self) -> Result<PathBuf, String> {
        let info = DaemonClient::new(self.client.clone())
            .daemon_info(ctx(SHORT), &InfoRequest::default())
            .map_err(|e| format!("asking skiffd where FIFOs go: {}", rpc_err(e)))?;
        Ok(PathBuf::from(info.fifo_dir))
    }

    pub fn tasks(&self) -> TasksClient {
        TasksClient::new(self.client.clone())
    }

    pub fn task(&self, id: &str, exec_id: &str) -> TaskRequest {
        TaskRequest {
            namespace: self.ns.clone(),
            container_id: id.into(),
            exec_id: exec_id.into(),
            ..Default::default()
        }
    }

    pub fn kill_request(&self, id: &str, signal: u32, all: bool) -> KillTaskRequest {
        KillTaskRequest {
            namespace: self.ns.clone(),
            container_id: id.to_string(),
            signal,
            all,
            ..Default::default()
        }
    }

    /// SIGKILL to every process of the task; a task already gone is fine.
    pub fn force_kill(&self, id: &str) {
        let _ = self
            .tasks()
            .kill_task(ctx(SHORT), &self.kill_request(id, 9, true));
    }
}

pub fn ctx(timeout: Duration) -> ttrpc::context::Context {
    ttrpc::context::with_timeout(timeout.as_nanos().min(i64::MAX as u128) as i64)
}

/// What skiffd said, without ttrpc's wrapping.
pub fn rpc_err(e: ttrpc::Error) -> String {
    match e {
        ttrpc::Error::RpcStatus(s) => s.message().to_string(),
        other => other.to_string(),
    }
}
