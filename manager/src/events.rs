//! Task events: shims forward them to skiffd's `Events/Forward` endpoint (their
//! TTRPC_ADDRESS); skiffd records exits and keeps the latest events, numbered, for
//! clients that poll (`skiff events`).

use crate::db::now;
use crate::tasks::Tasks;
use skiff_protos::events::ForwardRequest;
use skiff_protos::events_ttrpc::{create_events, Events};
use skiff_protos::manager::Event;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const KEPT: usize = 10_000;

#[derive(Default)]
pub struct EventLog {
    inner: Mutex<(u64, VecDeque<Event>)>,
    arrived: Condvar,
}

impl EventLog {
    pub fn push(&self, mut e: Event) {
        let mut g = self.inner.lock().unwrap();
        g.0 += 1;
        e.seq = g.0;
        g.1.push_back(e);
        if g.1.len() > KEPT {
            g.1.pop_front();
        }
        self.arrived.notify_all();
    }

    /// Events after `after`, waiting up to `timeout` for the first.
    pub fn poll(&self, after: u64, timeout: Duration) -> Vec<Event> {
        let deadline = Instant::now() + timeout;
        let mut g = self.inner.lock().unwrap();
        loop {
            let out: Vec<Event> = g.1.iter().filter(|e| e.seq > after).cloned().collect();
            let now = Instant::now();
            if !out.is_empty() || now >= deadline {
                return out;
            }
            g = self.arrived.wait_timeout(g, deadline - now).unwrap().0;
        }
    }
}

pub struct Forwarded(pub Arc<Tasks>);

impl Events for Forwarded {
    fn forward(
        &self,
        _: &ttrpc::TtrpcContext,
        req: ForwardRequest,
    ) -> ttrpc::Result<protobuf::well_known_types::empty::Empty> {
        if let Some(env) = req.envelope.as_ref() {
            let decoded = env
                .event
                .as_ref()
                .and_then(|a| skiff_protos::event_decode::decode(&a.type_url, &a.value))
                .unwrap_or_default();
            if env.topic == "/tasks/exit" {
                self.0.on_exit(
                    &env.namespace,
                    &decoded.container_id,
                    &decoded.exec_id,
                    decoded.exit_status,
                );
            }
            crate::log::debug(&format!(
                "event {} {} {}",
                env.namespace, env.topic, decoded.container_id
            ));
            self.0.events.push(Event {
                namespace: env.namespace.clone(),
                topic: env.topic.clone(),
                container_id: decoded.container_id,
                exec_id: decoded.exec_id,
                pid: decoded.pid,
                exit_status: decoded.exit_status,
                at: Some(crate::db::timestamp_nanos(env.timestamp.as_ref()))
                    .filter(|t| *t > 0)
                    .unwrap_or_else(now),
                ..Default::default()
            });
        }
        Ok(Default::default())
    }
}

pub fn service(
    tasks: Arc<Tasks>,
) -> std::collections::HashMap<String, Box<dyn ttrpc::MethodHandler + Send + Sync>> {
    create_events(Arc::new(Forwarded(tasks)))
}
