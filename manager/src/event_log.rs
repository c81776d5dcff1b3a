//! The latest task events, numbered, for clients that poll (`skiff events`).

use skiff_protos::manager::Event;
use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};
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

    /// Namespace `ns`'s events after `after`, waiting up to `timeout` for the first.
    pub fn poll(&self, ns: &str, after: u64, timeout: Duration) -> Vec<Event> {
        let deadline = Instant::now() + timeout;
        let mut g = self.inner.lock().unwrap();
        loop {
            let out: Vec<Event> =
                g.1.iter()
                    .filter(|e| e.seq > after && e.namespace == ns)
                    .cloned()
                    .collect();
            let now = Instant::now();
            if !out.is_empty() || now >= deadline {
                return out;
            }
            g = self.arrived.wait_timeout(g, deadline - now).unwrap().0;
        }
    }
}
