//! The task model: the Task service, the containers it serves, their processes and the
//! state machine they move through. The RPCs are in `ops/`; `exits` routes reaped
//! processes to their owners, reports them and answers Wait.

pub mod bundle;
pub mod container;
pub mod error;
mod exits;
mod ops;
pub mod process;
pub mod state;
pub mod validate;

use crate::events::EventPublisher;
use crate::stdio::Pumps;
use crate::sys::oom::OomWatcher;
use crate::sys::reaper::{Exit, Reaper};
use crate::task::container::Container;
use crate::task::error::{Result, ShimError};
use protobuf::well_known_types::empty::Empty;
use protobuf::MessageDyn;
use skiff_protos::shim::{ConnectRequest, ConnectResponse, ShutdownRequest};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex};

pub struct TaskService {
    namespace: String,
    containers: Mutex<HashMap<String, Arc<Container>>>,
    pids: Mutex<PidIndex>,
    publisher: EventPublisher,
    reaper: Arc<Reaper>,
    oom: Arc<OomWatcher>,
    pumps: Arc<Pumps>,
    pending_exits: Mutex<Vec<exits::PendingExit>>,
    shutdown: Arc<ShutdownSignal>,
}

/// Who owns each live pid, and exits that arrived before their owner was known.
#[derive(Default)]
struct PidIndex {
    owners: HashMap<u32, (String, String)>,
    unclaimed: VecDeque<Exit>,
}

/// Set when the shim should exit; the main thread waits on it.
#[derive(Default)]
pub struct ShutdownSignal {
    requested: Mutex<bool>,
    cond: Condvar,
}

impl ShutdownSignal {
    pub fn request(&self) {
        *self.requested.lock().unwrap() = true;
        self.cond.notify_all();
    }

    pub fn is_requested(&self) -> bool {
        *self.requested.lock().unwrap()
    }

    pub fn wait(&self) {
        let mut r = self.requested.lock().unwrap();
        while !*r {
            r = self.cond.wait(r).unwrap();
        }
    }
}

impl TaskService {
    pub fn new(
        namespace: String,
        publisher: EventPublisher,
        reaper: Arc<Reaper>,
        oom: Arc<OomWatcher>,
        pumps: Arc<Pumps>,
        shutdown: Arc<ShutdownSignal>,
    ) -> TaskService {
        TaskService {
            namespace,
            containers: Mutex::new(HashMap::new()),
            pids: Mutex::new(PidIndex::default()),
            publisher,
            reaper,
            oom,
            pumps,
            pending_exits: Mutex::new(Vec::new()),
            shutdown,
        }
    }

    fn container(&self, id: &str) -> Result<Arc<Container>> {
        self.containers
            .lock()
            .unwrap()
            .get(id)
            .cloned()
            .ok_or_else(|| ShimError::NotFound(format!("container {id:?} not found")))
    }

    fn publish(&self, topic: &str, url: &str, event: &dyn MessageDyn) {
        self.publisher.publish(&self.namespace, topic, url, event);
    }

    /// Records the owner of a new pid; returns an exit that already happened to it.
    fn claim_pid(&self, pid: u32, container: &str, exec_id: &str) -> Option<Exit> {
        let mut index = self.pids.lock().unwrap();
        index
            .owners
            .insert(pid, (container.to_string(), exec_id.to_string()));
        let pos = index.unclaimed.iter().position(|e| e.pid == pid)?;
        index.unclaimed.remove(pos)
    }

    pub fn connect(&self, req: ConnectRequest) -> Result<ConnectResponse> {
        let task_pid = self
            .container(&req.id)
            .map(|c| c.processes.lock().unwrap().init.pid)
            .unwrap_or(0);
        Ok(ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..Default::default()
        })
    }

    pub fn shutdown(&self, req: ShutdownRequest) -> Result<Empty> {
        let containers = self.containers.lock().unwrap();
        if !containers.is_empty() && !req.now {
            // Other containers of the pod still need this shim.
            return Ok(Empty::new());
        }
        drop(containers);
        self.shutdown.request();
        Ok(Empty::new())
    }
}

/// Reads the pid file a runtime command wrote.
fn read_pid(path: &std::path::Path) -> Result<u32> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ShimError::internal(format!("reading {}", path.display()), e))?;
    text.trim()
        .parse()
        .map_err(|_| ShimError::Internal(format!("{} holds {:?}, not a pid", path.display(), text)))
}
