//! The task model: the Task service, the containers it serves, their processes and the
//! state machine they move through. Each RPC is a file of `ops/`; `exits` routes reaped
//! processes to their owners, reports them and answers Wait; `job` is how an RPC whose
//! runtime command may take long answers later.
//!
//! Every method here runs on the event loop's thread; what runs a runtime command hands
//! it out as a [`job::Job`], whose work is given only what it needs (never the service).

mod announce;
pub mod bundle;
pub mod container;
pub mod error;
mod exits;
pub mod job;
mod ops;
pub mod process;
pub mod state;
mod streams;
pub mod validate;

pub use job::{Finish, Job, Order, Reply};

use crate::events::EventPublisher;
use crate::options::driver::Driver;
use crate::stdio::Pumps;
use crate::sys::oom::OomWatcher;
use crate::sys::reaper::Reaper;
use container::Container;
use error::{Result, ShimError};
use exits::ExitRouter;
use protobuf::MessageDyn;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub struct TaskService {
    namespace: String,
    driver: &'static Driver,
    containers: Mutex<HashMap<String, Arc<Container>>>,
    /// Ids whose Create is in flight: taken, though not containers yet.
    creating: Mutex<HashSet<String>>,
    exits: Mutex<ExitRouter>,
    /// Jobs the task model starts itself (a kill-all after an init's exit).
    own_jobs: Mutex<Vec<Job<()>>>,
    publisher: EventPublisher,
    reaper: Arc<Reaper>,
    oom: Arc<OomWatcher>,
    pumps: Arc<Pumps>,
    shutdown: AtomicBool,
}

/// What the service is made with: the loop's parts it uses.
pub struct Parts {
    pub namespace: String,
    /// Who does the OCI runtime's work: the binary's choice.
    pub driver: &'static Driver,
    pub publisher: EventPublisher,
    pub reaper: Arc<Reaper>,
    pub oom: Arc<OomWatcher>,
    pub pumps: Arc<Pumps>,
}

impl TaskService {
    pub fn new(parts: Parts) -> TaskService {
        TaskService {
            namespace: parts.namespace,
            driver: parts.driver,
            containers: Mutex::new(HashMap::new()),
            creating: Mutex::new(HashSet::new()),
            exits: Mutex::new(ExitRouter::default()),
            own_jobs: Mutex::new(Vec::new()),
            publisher: parts.publisher,
            reaper: parts.reaper,
            oom: parts.oom,
            pumps: parts.pumps,
            shutdown: AtomicBool::new(false),
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

    /// Jobs the task model started itself since the last call, for the loop to run.
    pub fn take_own_jobs(&self) -> Vec<Job<()>> {
        std::mem::take(&mut *self.own_jobs.lock().unwrap())
    }

    /// Whether a Shutdown was granted: the loop then ends.
    pub fn shutdown_requested(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    /// Reports OOM kills the watches saw.
    pub fn oom_ready(&self) {
        for id in self.oom.process_ready() {
            self.announce_oom(&id);
        }
    }
}
