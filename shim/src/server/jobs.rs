//! Runtime commands off the loop: the work of each [`Job`] runs on a short-lived thread of
//! its own, and its result comes back through a channel that wakes the loop. An idle
//! shim runs no such thread; a hung command holds only its own.
//!
//! Jobs of one container keep their order ([`Order`]): in-turn jobs run one at a time,
//! in the order they came, each after the at-once jobs that came before it; at-once jobs
//! start at once.

use crate::task::error::ShimError;
use crate::task::{Finish, Job, Order, TaskService};
use nix::sys::eventfd::{EfdFlags, EventFd};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

/// Where a job's answer goes: a request on a connection, or nowhere (the task model's own
/// jobs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyTo {
    pub conn: u64,
    pub stream_id: u32,
}

/// A job whose work is done, to finish on the loop.
pub struct Finished {
    pub finish: Finish<Vec<u8>>,
    pub to: Option<ReplyTo>,
}

pub struct Jobs {
    done_tx: Sender<Done>,
    done_rx: Receiver<Done>,
    wake: Arc<EventFd>,
    lanes: HashMap<String, Lane>,
    next_seq: u64,
    running: usize,
}

/// One container's jobs.
#[derive(Default)]
struct Lane {
    in_turn_running: bool,
    /// Sequence numbers of the at-once jobs still running.
    at_once_running: BTreeSet<u64>,
    waiting: VecDeque<Waiting>,
}

struct Waiting {
    job: Job<Vec<u8>>,
    to: Option<ReplyTo>,
    /// The at-once jobs it comes after: those of a lower sequence number.
    after: u64,
}

struct Done {
    key: String,
    /// The sequence number of an at-once job; None for an in-turn one.
    at_once: Option<u64>,
    finish: Finish<Vec<u8>>,
    to: Option<ReplyTo>,
}

impl Jobs {
    pub fn new() -> io::Result<Jobs> {
        let (done_tx, done_rx) = channel();
        Ok(Jobs {
            done_tx,
            done_rx,
            wake: Arc::new(EventFd::from_flags(
                EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK,
            )?),
            lanes: HashMap::new(),
            next_seq: 0,
            running: 0,
        })
    }

    /// Readable when a job's work is done.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.wake.as_fd()
    }

    /// Jobs whose work runs now.
    pub fn running(&self) -> usize {
        self.running
    }

    /// Takes a job; the answer comes from [`Jobs::collect`] once it is done. A job that
    /// cannot get a thread is finished at once with an error.
    pub fn submit(&mut self, job: Job<Vec<u8>>, to: Option<ReplyTo>) -> Vec<Finished> {
        self.next_seq += 1;
        let seq = self.next_seq;
        let key = job.order.key().to_string();
        let lane = self.lanes.entry(key.clone()).or_default();
        match job.order {
            Order::AtOnce(_) => {
                lane.at_once_running.insert(seq);
                let mut out: Vec<Finished> = self
                    .spawn(key.clone(), Some(seq), job, to)
                    .into_iter()
                    .collect();
                if !out.is_empty() {
                    out.extend(self.start_next(&key));
                }
                out
            }
            Order::InTurn(_) => {
                lane.waiting.push_back(Waiting {
                    job,
                    to,
                    after: seq,
                });
                self.start_next(&key)
            }
        }
    }

    /// The jobs whose work is done, in the order they finished; starts what waited for
    /// them.
    pub fn collect(&mut self) -> Vec<Finished> {
        let _ = self.wake.read();
        let mut out = Vec::new();
        while let Ok(done) = self.done_rx.try_recv() {
            self.running -= 1;
            if let Some(lane) = self.lanes.get_mut(&done.key) {
                match done.at_once {
                    Some(seq) => {
                        lane.at_once_running.remove(&seq);
                    }
                    None => lane.in_turn_running = false,
                }
            }
            out.push(Finished {
                finish: done.finish,
                to: done.to,
            });
            out.extend(self.start_next(&done.key));
        }
        out
    }

    /// Starts the lane's next in-turn job if nothing it must follow still runs (and the
    /// one after it, if that one could not get a thread).
    fn start_next(&mut self, key: &str) -> Vec<Finished> {
        let mut failed = Vec::new();
        loop {
            let Some(lane) = self.lanes.get_mut(key) else {
                return failed;
            };
            let ready = !lane.in_turn_running
                && lane.waiting.front().is_some_and(|w| {
                    lane.at_once_running
                        .first()
                        .is_none_or(|oldest| *oldest > w.after)
                });
            if !ready {
                if lane.waiting.is_empty()
                    && !lane.in_turn_running
                    && lane.at_once_running.is_empty()
                {
                    self.lanes.remove(key);
                }
                return failed;
            }
            let next = lane.waiting.pop_front().expect("a waiting job");
            lane.in_turn_running = true;
            match self.spawn(key.to_string(), None, next.job, next.to) {
                Some(error) => failed.push(error),
                None => return failed,
            }
        }
    }

    /// Runs the work on a thread; a failure to start one is answered as an error.
    fn spawn(
        &mut self,
        key: String,
        at_once: Option<u64>,
        job: Job<Vec<u8>>,
        to: Option<ReplyTo>,
    ) -> Option<Finished> {
        let (tx, wake, work) = (self.done_tx.clone(), self.wake.clone(), job.work);
        let thread_key = key.clone();
        let started = std::thread::Builder::new()
            .name("runtime-command".into())
            .spawn(move || {
                // Runtime commands run in the shim's namespaces, not a pod's.
                crate::sys::pod_ns::on_new_thread();
                let finish = work();
                let done = Done {
                    key: thread_key,
                    at_once,
                    finish,
                    to,
                };
                let _ = tx.send(done);
                let _ = wake.write(1);
            });
        match started {
            Ok(_) => {
                self.running += 1;
                None
            }
            Err(e) => {
                let lane = self.lanes.entry(key).or_default();
                match at_once {
                    Some(seq) => {
                        lane.at_once_running.remove(&seq);
                    }
                    None => lane.in_turn_running = false,
                }
                let message = format!("no thread for a runtime command: {e}");
                let finish: Finish<Vec<u8>> =
                    Box::new(move |_: &TaskService| Err(ShimError::Unavailable(message)));
                Some(Finished { finish, to })
            }
        }
    }
}
