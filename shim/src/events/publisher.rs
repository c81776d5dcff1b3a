//! Publishing task events to the manager's ttrpc events endpoint (`TTRPC_ADDRESS`).
//!
//! Events are queued in the order they happen and sent by one thread. While the manager
//! is away (restarting) they wait and the sender retries; the queue is bounded, and when
//! it overflows the oldest events go first, counted, and the count is logged when it
//! starts and when delivery resumes: never silently lost. An event the manager answers
//! with an error is dropped with a log line (sending it again would get the same answer,
//! and would hold up every later one).

use super::client::{CallError, UnaryClient};
use protobuf::well_known_types::any::Any;
use protobuf::well_known_types::timestamp::Timestamp;
use protobuf::{MessageDyn, MessageField};
use skiff_protos::envelope::Envelope;
use skiff_protos::events::ForwardRequest;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Events kept for a manager that is away, at the most.
pub const QUEUE_LIMIT: usize = 4096;
const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

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
    /// Events dropped by overflow since delivery last worked.
    dropped: u64,
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
        match address {
            Some(address) => {
                let shared = publisher.shared.clone();
                let address = match address.contains("://") {
                    true => address,
                    false => format!("unix://{address}"),
                };
                std::thread::Builder::new()
                    .name("events".into())
                    .spawn(move || Sender::new(address).run(&shared))?;
            }
            None => log::warn!("TTRPC_ADDRESS is not set: task events will not reach a manager"),
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
            Err(e) => return log::error!("encoding event {topic}: {e}"),
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
            queue.items.pop_front();
            if queue.dropped == 0 {
                log::error!(
                    "event queue full ({QUEUE_LIMIT}): the manager is away; dropping the \
                     oldest events until it is back"
                );
            }
            queue.dropped += 1;
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

/// The sending thread: one connection, made again when it breaks, with a growing wait.
struct Sender {
    address: String,
    client: Option<UnaryClient>,
    backoff: Duration,
}

/// What became of one event.
enum Sent {
    Delivered,
    /// The manager answered with an error: not to be sent again.
    Refused(String),
    /// Not delivered: to be sent again.
    Failed(String),
}

impl Sender {
    fn new(address: String) -> Sender {
        Sender {
            address,
            client: None,
            backoff: BACKOFF_MIN,
        }
    }

    fn run(mut self, shared: &Shared) {
        loop {
            let envelope = next_event(shared);
            let sent = self.send(&envelope);
            let mut queue = shared.queue.lock().unwrap();
            match sent {
                Sent::Delivered | Sent::Refused(_) => {
                    if let Sent::Refused(why) = &sent {
                        log::warn!("the manager refused event {}: {why}", envelope.topic);
                    }
                    // The front may have been dropped by an overflow meanwhile; pop only
                    // what was sent.
                    if queue.items.front() == Some(&envelope) {
                        queue.items.pop_front();
                    }
                    if queue.dropped > 0 {
                        log::warn!(
                            "events reach {} again; {} were dropped while it was away",
                            self.address,
                            queue.dropped
                        );
                        queue.dropped = 0;
                    }
                    queue.in_flight = false;
                    self.backoff = BACKOFF_MIN;
                    shared.changed.notify_all();
                }
                Sent::Failed(why) => {
                    drop(queue);
                    log::debug!(
                        "forwarding {} to {}: {why}; will retry",
                        envelope.topic,
                        self.address
                    );
                    std::thread::sleep(self.backoff);
                    self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    fn send(&mut self, envelope: &Envelope) -> Sent {
        if self.client.is_none() {
            match UnaryClient::connect(&self.address) {
                Ok(c) => self.client = Some(c),
                Err(e) => return Sent::Failed(format!("connecting: {e}")),
            }
        }
        let client = self.client.as_mut().expect("connected");
        let req = ForwardRequest {
            envelope: MessageField::some(envelope.clone()),
            ..Default::default()
        };
        let service = "containerd.services.events.ttrpc.v1.Events";
        match client.call(service, "Forward", &req, FORWARD_TIMEOUT) {
            Ok(_) => Sent::Delivered,
            Err(CallError::Refused { code, message }) => {
                Sent::Refused(format!("{code:?}: {message}"))
            }
            Err(CallError::Transport(e)) => {
                self.client = None;
                Sent::Failed(e.to_string())
            }
        }
    }
}

/// Waits for the oldest queued event and marks it in flight.
fn next_event(shared: &Shared) -> Envelope {
    let mut queue = shared.queue.lock().unwrap();
    while queue.items.is_empty() {
        queue = shared.changed.wait(queue).unwrap();
    }
    queue.in_flight = true;
    queue.items.front().cloned().expect("not empty")
}
