//! The manager's end of task events: a ttrpc `Events/Forward` endpoint, the one whose
//! address containerd hands its shims as TTRPC_ADDRESS. Every envelope is recorded with
//! what a user reads from it.

use protobuf::Message;
use skiff_protos::events::ForwardRequest;
use skiff_protos::events_ttrpc::{create_events, Events};
use skiff_protos::task_events::*;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// One forwarded event, decoded.
#[derive(Debug, Clone, Default)]
pub struct Event {
    pub namespace: String,
    pub topic: String,
    pub container_id: String,
    /// The exec id of exec events and of a TaskExit/TaskDelete of an exec (empty or the
    /// container id for the init process, as shims differ there).
    pub exec_id: String,
    pub pid: u32,
    pub exit_status: u32,
}

#[derive(Default)]
pub struct EventLog {
    events: Mutex<Vec<Event>>,
    arrived: Condvar,
}

impl EventLog {
    pub fn of_namespace(&self, namespace: &str) -> Vec<Event> {
        let all = self.events.lock().unwrap();
        all.iter()
            .filter(|e| e.namespace == namespace)
            .cloned()
            .collect()
    }

    /// Waits at most `timeout` for `done` to hold on the events of `namespace`; returns
    /// them either way.
    pub fn wait_until(
        &self,
        namespace: &str,
        timeout: Duration,
        done: impl Fn(&[Event]) -> bool,
    ) -> Vec<Event> {
        let deadline = Instant::now() + timeout;
        let mut all = self.events.lock().unwrap();
        loop {
            let mine: Vec<Event> = all
                .iter()
                .filter(|e| e.namespace == namespace)
                .cloned()
                .collect();
            let now = Instant::now();
            if done(&mine) || now >= deadline {
                return mine;
            }
            all = self.arrived.wait_timeout(all, deadline - now).unwrap().0;
        }
    }

    fn push(&self, event: Event) {
        self.events.lock().unwrap().push(event);
        self.arrived.notify_all();
    }
}

struct Forwarded(Arc<EventLog>);

impl Events for Forwarded {
    fn forward(
        &self,
        _ctx: &ttrpc::TtrpcContext,
        req: ForwardRequest,
    ) -> ttrpc::Result<protobuf::well_known_types::empty::Empty> {
        if let Some(envelope) = req.envelope.as_ref() {
            let mut event = Event {
                namespace: envelope.namespace.clone(),
                topic: envelope.topic.clone(),
                ..Default::default()
            };
            if let Some(any) = envelope.event.as_ref() {
                decode(&any.type_url, &any.value, &mut event);
            }
            self.0.push(event);
        }
        Ok(Default::default())
    }
}

/// Fills in what the payload says. Shims name the type `containerd.events.TaskExit`,
/// some with a `types.containerd.io/` prefix: the last name decides.
fn decode(type_url: &str, value: &[u8], e: &mut Event) {
    let name = type_url.rsplit(['.', '/']).next().unwrap_or("");
    match name {
        "TaskCreate" => {
            if let Ok(m) = TaskCreate::parse_from_bytes(value) {
                (e.container_id, e.pid) = (m.container_id, m.pid);
            }
        }
        "TaskStart" => {
            if let Ok(m) = TaskStart::parse_from_bytes(value) {
                (e.container_id, e.pid) = (m.container_id, m.pid);
            }
        }
        "TaskExit" => {
            if let Ok(m) = TaskExit::parse_from_bytes(value) {
                (e.container_id, e.exec_id) = (m.container_id, m.id);
                (e.pid, e.exit_status) = (m.pid, m.exit_status);
            }
        }
        "TaskDelete" => {
            if let Ok(m) = TaskDelete::parse_from_bytes(value) {
                (e.container_id, e.exec_id) = (m.container_id, m.id);
                (e.pid, e.exit_status) = (m.pid, m.exit_status);
            }
        }
        "TaskOOM" => {
            if let Ok(m) = TaskOOM::parse_from_bytes(value) {
                e.container_id = m.container_id;
            }
        }
        "TaskExecAdded" => {
            if let Ok(m) = TaskExecAdded::parse_from_bytes(value) {
                (e.container_id, e.exec_id) = (m.container_id, m.exec_id);
            }
        }
        "TaskExecStarted" => {
            if let Ok(m) = TaskExecStarted::parse_from_bytes(value) {
                (e.container_id, e.exec_id, e.pid) = (m.container_id, m.exec_id, m.pid);
            }
        }
        "TaskPaused" => {
            if let Ok(m) = TaskPaused::parse_from_bytes(value) {
                e.container_id = m.container_id;
            }
        }
        "TaskResumed" => {
            if let Ok(m) = TaskResumed::parse_from_bytes(value) {
                e.container_id = m.container_id;
            }
        }
        "TaskCheckpointed" => {
            if let Ok(m) = TaskCheckpointed::parse_from_bytes(value) {
                e.container_id = m.container_id;
            }
        }
        _ => {}
    }
}

/// The running endpoint; stops serving on drop.
pub struct EventServer {
    server: Option<ttrpc::Server>,
    pub address: String,
    pub log: Arc<EventLog>,
}

impl EventServer {
    /// Serves on the unix socket `path`.
    pub fn start(path: &std::path::Path) -> Result<EventServer, String> {
        let log = Arc::new(EventLog::default());
        let address = format!("unix://{}", path.display());
        let mut server = ttrpc::Server::new()
            .bind(&address)
            .map_err(|e| format!("events endpoint {address}: {e}"))?
            .register_service(create_events(Arc::new(Forwarded(log.clone()))));
        server
            .start()
            .map_err(|e| format!("serving events on {address}: {e}"))?;
        Ok(EventServer {
            server: Some(server),
            address: path.display().to_string(),
            log,
        })
    }
}

impl Drop for EventServer {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown();
        }
    }
}
