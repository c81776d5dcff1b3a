//! Progress of long requests (a pull, an import): the client names its request with a
//! job id, skiffd keeps one line per blob or layer (bytes done of a total, and a state)
//! that the client polls (`Images/JobProgress`) to draw. Polling is also the client's
//! heartbeat: a job whose client stopped polling for `ABANDONED` (killed, or its
//! connection dropped) is cancelled, as is one the client cancels (`Images/CancelJob`,
//! on Ctrl-C). A cancelled job stops at its next read and leaves nothing behind.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const ABANDONED: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Item {
    pub name: String,
    /// "waiting", "fetching", "exists", "fetched", "unpacking", "done".
    pub state: String,
    pub done: u64,
    pub total: u64,
}

pub struct Job {
    items: Mutex<Vec<Item>>,
    cancelled: AtomicBool,
    /// Whether a client polls it (its absence then cancels the job).
    watched: bool,
    polled: Mutex<Instant>,
}

impl Job {
    /// A job nobody polls (a request without a job id).
    pub fn unwatched() -> Arc<Job> {
        Arc::new(Job::new(false))
    }

    fn new(watched: bool) -> Job {
        Job {
            items: Mutex::new(Vec::new()),
            cancelled: AtomicBool::new(false),
            watched,
            polled: Mutex::new(Instant::now()),
        }
    }

    /// A new line; its index for updates.
    pub fn item(&self, name: &str, total: u64, state: &str) -> usize {
        let mut items = self.items.lock().unwrap();
        items.push(Item {
            name: name.to_string(),
            state: state.to_string(),
            done: 0,
            total,
        });
        items.len() - 1
    }

    pub fn set(&self, i: usize, done: u64, state: &str) {
        if let Some(it) = self.items.lock().unwrap().get_mut(i) {
            it.done = done;
            it.state = state.to_string();
        }
    }

    pub fn add(&self, i: usize, n: u64) {
        if let Some(it) = self.items.lock().unwrap().get_mut(i) {
            it.done += n;
        }
    }

    pub fn items(&self) -> Vec<Item> {
        self.items.lock().unwrap().clone()
    }

    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }

    /// Cancelled by the client, or abandoned by it.
    pub fn cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
            || (self.watched && self.polled.lock().unwrap().elapsed() > ABANDONED)
    }
}

/// The jobs under way, by id.
#[derive(Default)]
pub struct Jobs {
    jobs: Mutex<HashMap<String, Arc<Job>>>,
}

impl Jobs {
    /// A job for `id` (an unwatched one when empty); `Done` removes it when dropped.
    pub fn start(&self, id: &str) -> (Arc<Job>, Done<'_>) {
        if id.is_empty() {
            return (Job::unwatched(), Done(self, String::new()));
        }
        let job = Arc::new(Job::new(true));
        self.jobs
            .lock()
            .unwrap()
            .insert(id.to_string(), job.clone());
        (job, Done(self, id.to_string()))
    }

    /// The job's lines (and a heartbeat), or None once it is over.
    pub fn poll(&self, id: &str) -> Option<Vec<Item>> {
        let job = self.jobs.lock().unwrap().get(id).cloned()?;
        *job.polled.lock().unwrap() = Instant::now();
        Some(job.items())
    }

    pub fn cancel(&self, id: &str) -> bool {
        match self.jobs.lock().unwrap().get(id) {
            Some(j) => {
                j.cancel();
                true
            }
            None => false,
        }
    }
}

pub struct Done<'a>(&'a Jobs, String);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        if !self.1.is_empty() {
            self.0.jobs.lock().unwrap().remove(&self.1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_report_progress_and_end_cancelled_or_done() {
        let jobs = Jobs::default();
        let (job, done) = jobs.start("j1");
        let i = job.item("layer", 10, "fetching");
        job.add(i, 4);
        assert_eq!(jobs.poll("j1").unwrap()[0].done, 4);
        assert!(!job.cancelled());
        assert!(jobs.cancel("j1") && job.cancelled());
        drop(done);
        assert!(jobs.poll("j1").is_none());
        assert!(!Job::unwatched().cancelled());
    }
}
