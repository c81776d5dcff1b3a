//! Runtime commands off the loop: the work of each [`Job`] runs on a short-lived thread of
//! its own, and its result comes back through a channel that wakes the loop. An idle
//! shim runs no such thread; a hung command holds only its own.
//!
//! Jobs of one container keep their order ([`Order`]): in-turn jobs run one at a time,
//! in the order they came, each after the at-once jobs that came before it; at-once jobs
//! start at once.

use crate::task::error::ShimError;
use crate::task::{Finish, Job, Order};
use nix::sys::eventfd::{EfdFlags, EventFd};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

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
        })
    }

    /// Readable when a job's work is done.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.wake.as_fd()
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

    /// Runs the work on a thread; when none can be started, the work is cancelled (what
    /// its request took is given back) and answered as an error.
    fn spawn(
        &mut self,
        key: String,
        at_once: Option<u64>,
        job: Job<Vec<u8>>,
        to: Option<ReplyTo>,
    ) -> Option<Finished> {
        // The thread takes the work from here; a thread that never started leaves it.
        let slot = Arc::new(Mutex::new(Some(job.work)));
        let (tx, wake, theirs) = (self.done_tx.clone(), self.wake.clone(), slot.clone());
        let thread_key = key.clone();
        let started = std::thread::Builder::new()
            .name("runtime-command".into())
            .spawn(move || {
                // Runtime commands run in the shim's namespaces, not a pod's.
                crate::sys::pod_ns::on_new_thread();
                let work = theirs.lock().unwrap().take().expect("work to run");
                let finish = work.run();
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
            Ok(_) => None,
            Err(e) => {
                let lane = self.lanes.entry(key).or_default();
                match at_once {
                    Some(seq) => {
                        lane.at_once_running.remove(&seq);
                    }
                    None => lane.in_turn_running = false,
                }
                let why =
                    ShimError::ResourceExhausted(format!("no thread for a runtime command: {e}"));
                let work = slot.lock().unwrap().take().expect("work that never ran");
                Some(Finished {
                    finish: work.cancel(why),
                    to,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The order of one container's jobs, without a runtime: each job's work records
    //! that it ran and waits for the test to let it go.
    use super::*;
    use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
    use std::time::Duration;

    const SOON: Duration = Duration::from_secs(5);

    /// Jobs whose work sends its name when it begins, then waits for a go.
    struct Bench {
        jobs: Jobs,
        began: Receiver<&'static str>,
        began_tx: SyncSender<&'static str>,
        gates: HashMap<&'static str, SyncSender<()>>,
    }

    impl Bench {
        fn new() -> Bench {
            let (began_tx, began) = sync_channel(16);
            Bench {
                jobs: Jobs::new().unwrap(),
                began,
                began_tx,
                gates: HashMap::new(),
            }
        }

        fn submit(&mut self, name: &'static str, order: Order) -> Vec<Finished> {
            let (go, gate) = sync_channel::<()>(1);
            self.gates.insert(name, go);
            let began = self.began_tx.clone();
            let work = move || {
                let _ = began.send(name);
                let _ = gate.recv_timeout(SOON);
                name.as_bytes().to_vec()
            };
            let job = Job::new(order, work, |_: &crate::task::TaskService, out: Vec<u8>| {
                Ok(out)
            });
            let to = Some(ReplyTo {
                conn: 1,
                stream_id: name.len() as u32,
            });
            self.jobs.submit(job, to)
        }

        /// The names of the jobs that began, waiting a little for each expected one.
        fn began(&self, expected: usize) -> Vec<&'static str> {
            let mut out = Vec::new();
            while out.len() < expected {
                match self.began.recv_timeout(SOON) {
                    Ok(name) => out.push(name),
                    Err(_) => break,
                }
            }
            // Nothing more may begin now.
            if let Ok(extra) = self.began.recv_timeout(Duration::from_millis(100)) {
                out.push(extra);
            }
            out
        }

        /// Lets `name` finish and collects until its answer is back.
        fn finish(&mut self, name: &'static str) -> Vec<Option<ReplyTo>> {
            self.gates.remove(name).unwrap().send(()).unwrap();
            let deadline = std::time::Instant::now() + SOON;
            loop {
                let done = self.jobs.collect();
                if !done.is_empty() || std::time::Instant::now() > deadline {
                    return done.into_iter().map(|f| f.to).collect();
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    fn in_turn(id: &str) -> Order {
        Order::InTurn(id.into())
    }

    fn at_once(id: &str) -> Order {
        Order::AtOnce(id.into())
    }

    #[test]
    fn a_containers_in_turn_jobs_run_one_at_a_time_in_order() {
        let mut b = Bench::new();
        b.submit("create", in_turn("c"));
        b.submit("start", in_turn("c"));
        b.submit("delete", in_turn("c"));
        assert_eq!(b.began(1), ["create"]);
        b.finish("create");
        assert_eq!(b.began(1), ["start"]);
        b.finish("start");
        assert_eq!(b.began(1), ["delete"]);
        b.finish("delete");
    }

    #[test]
    fn an_at_once_job_runs_while_an_in_turn_job_hangs() {
        let mut b = Bench::new();
        b.submit("start", in_turn("c"));
        assert_eq!(b.began(1), ["start"]);
        b.submit("kill", at_once("c"));
        b.submit("pids", at_once("c"));
        let mut both = b.began(2);
        both.sort();
        assert_eq!(both, ["kill", "pids"]);
        b.finish("kill");
        b.finish("pids");
        b.finish("start");
    }

    #[test]
    fn an_in_turn_job_waits_for_the_at_once_jobs_before_it() {
        let mut b = Bench::new();
        b.submit("kill", at_once("c"));
        assert_eq!(b.began(1), ["kill"]);
        // A Delete does not overtake the Kill that came first.
        b.submit("delete", in_turn("c"));
        assert_eq!(b.began(0), Vec::<&str>::new());
        b.finish("kill");
        assert_eq!(b.began(1), ["delete"]);
        // A later at-once job does not hold it back.
        b.submit("pids", at_once("c"));
        assert_eq!(b.began(1), ["pids"]);
        b.finish("pids");
        b.finish("delete");
    }

    #[test]
    fn containers_do_not_wait_for_each_other() {
        let mut b = Bench::new();
        b.submit("create a", in_turn("a"));
        b.submit("create b", in_turn("b"));
        let mut both = b.began(2);
        both.sort();
        assert_eq!(both, ["create a", "create b"]);
        b.finish("create b");
        b.finish("create a");
    }

    #[test]
    fn a_finished_job_answers_its_request_and_wakes_the_loop() {
        let mut b = Bench::new();
        b.submit("state", at_once("c"));
        assert_eq!(b.began(1), ["state"]);
        b.gates.remove("state").unwrap().send(()).unwrap();
        let mut fds = [nix::poll::PollFd::new(
            b.jobs.fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let ready = nix::poll::poll(&mut fds, 5000u16).unwrap();
        assert_eq!(ready, 1, "the wake fd is readable once the work is done");
        let done = b.jobs.collect();
        assert_eq!(done.len(), 1);
        assert_eq!(
            done[0].to,
            Some(ReplyTo {
                conn: 1,
                stream_id: 5
            })
        );
        assert!(b.jobs.lanes.is_empty(), "an idle container keeps no lane");
    }
}
