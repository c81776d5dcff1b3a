//! Publishing task events to the manager's ttrpc events endpoint (`TTRPC_ADDRESS`).
//!
//! Events are queued in the order they happen and sent by one thread. When the manager is
//! away (restarting), they wait and are retried; the queue is bounded, and an overflow is
//! logged with the topic of every event it drops: never silently lost.

use super::client::UnaryClient;
use protobuf::well_known_types::any::Any;
use protobuf::well_known_types::timestamp::Timestamp;
use protobuf::{MessageDyn, MessageField};
use skiff_protos::envelope::Envelope;
use skiff_protos::events::ForwardRequest;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

const QUEUE_LIMIT: usize = 4096;
const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct EventPublisher {
    shared: Arc<Shared>,
    /// False when there is no manager to send to: events are logged, not queued.
    enabled: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    changed: Condvar,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Envelope>,
    /// An event is being sent: the queue is not drained until it is through.
    in_flight: bool,
}

impl EventPublisher {
    /// Starts the sending thread for the manager at `address` (a socket path, or
    /// `unix://` address). With no address, events are logged and dropped.
    pub fn start(address: Option<String>) -> std::io::Result<EventPublisher> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            changed: Condvar::new(),
        });
        let address = address.filter(|a| !a.is_empty());
        let publisher = EventPublisher {
            shared,
            enabled: address.is_some(),
        };
        if let Some(address) = address {
            let shared = publisher.shared.clone();
            let address = if address.contains("://") {
                address
            } else {
                format!("unix://{address}")
            };
            std::thread::Builder::new()
                .name("events".into())
                .spawn(move || send_loop(&shared, &address))?;
        } else {
            log::warn!("TTRPC_ADDRESS is not set: task events will not reach a manager");
        }
        Ok(publisher)
    }

    /// Queues an event. `type_url` is containerd's name for the message type.
    pub fn publish(&self, namespace: &str, topic: &str, type_url: &str, event: &dyn MessageDyn) {
        if !self.enabled {
            log::info!("no manager to send {topic} to (TTRPC_ADDRESS is not set)");
            return;
        }
        let value = match event.write_to_bytes_dyn() {
            Ok(v) => v,
            Err(e) => {
                log::error!("encoding event {topic}: {e}");
                return;
            }
        };
        let envelope = Envelope {
            timestamp: MessageField::some(timestamp(SystemTime::now())),
            namespace: namespace.to_string(),
            topic: topic.to_string(),
            event: MessageField::some(Any {
                type_url: type_url.to_string(),
                value,
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut queue = self.shared.queue.lock().unwrap();
        if queue.items.len() >= QUEUE_LIMIT {
            if let Some(dropped) = queue.items.pop_front() {
                log::error!(
                    "event queue full ({QUEUE_LIMIT}): dropping the oldest event, {} in {}",
                    dropped.topic,
                    dropped.namespace
                );
            }
        }
        queue.items.push_back(envelope);
        self.shared.changed.notify_all();
    }

    /// Waits until every queued event has been delivered, at most `timeout`. False if
    /// some are still queued.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut queue = self.shared.queue.lock().unwrap();
        loop {
            if queue.items.is_empty() && !queue.in_flight {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            queue = self.shared.changed.wait_timeout(queue, left).unwrap().0;
        }
    }
}

pub fn timestamp(t: SystemTime) -> Timestamp {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
        ..Default::default()
    }
}

fn send_loop(shared: &Shared, address: &str) {
    let mut client: Option<UnaryClient> = None;
    let mut backoff = Duration::from_millis(50);
    loop {
        let envelope = {
            let mut queue = shared.queue.lock().unwrap();
            while queue.items.is_empty() {
                queue = shared.changed.wait(queue).unwrap();
            }
            queue.in_flight = true;
            queue.items.front().cloned().expect("not empty")
        };
        if client.is_none() {
            match UnaryClient::connect(address) {
                Ok(c) => client = Some(c),
                Err(e) => log::debug!("connecting to {address}: {e}"),
            }
        }
        let sent = client.as_mut().map(|c| {
            let req = ForwardRequest {
                envelope: MessageField::some(envelope.clone()),
                ..Default::default()
            };
            c.call(
                "containerd.services.events.ttrpc.v1.Events",
                "Forward",
                &req,
                FORWARD_TIMEOUT,
            )
        });
        let mut queue = shared.queue.lock().unwrap();
        match sent {
            Some(Ok(_)) => {
                // The front may have been dropped by an overflow meanwhile; pop only
                // what was sent.
                if queue.items.front() == Some(&envelope) {
                    queue.items.pop_front();
                }
                queue.in_flight = false;
                backoff = Duration::from_millis(50);
                shared.changed.notify_all();
            }
            Some(Err(e)) => {
                log::warn!(
                    "forwarding {} to {address}: {e}; will retry",
                    envelope.topic
                );
                client = None;
                drop(queue);
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            None => {
                drop(queue);
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}
