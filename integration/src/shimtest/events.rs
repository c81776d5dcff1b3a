//! The manager's end of task events: a ttrpc `Events/Forward` endpoint, the one whose
//! address containerd hands its shims as TTRPC_ADDRESS. Every envelope is recorded with
//! what a user reads from it.

use skiff_protos::events::ForwardRequest;
use skiff_protos::events_ttrpc::{create_events, Events};
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
        let deadline = Instant::now() + super::patience(timeout);
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

fn decode(type_url: &str, value: &[u8], e: &mut Event) {
    if let Some(d) = skiff_shim_client::events::decode(type_url, value) {
        (e.container_id, e.exec_id, e.pid, e.exit_status) =
            (d.container_id, d.exec_id, d.pid, d.exit_status);
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
        EventServer::start_with(path, Arc::new(EventLog::default()))
    }

    /// Serves on `path`, recording into `log` (one a test made before).
    pub fn start_with(path: &std::path::Path, log: Arc<EventLog>) -> Result<EventServer, String> {
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
