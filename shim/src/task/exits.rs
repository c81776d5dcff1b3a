//! The one path of an exit: the loop's reaper hands it over ([`TaskService::reaped`]);
//! the process that owns the pid is marked exited at once (so a Kill can no longer reach
//! its reaped pid); the exit is reported once its output has drained and no start of it
//! is in flight ([`TaskService::report_exits`]), and only then does Wait answer.
//!
//! A process's pid is known only when the runtime command that started it returns, and
//! it may have exited before that: such exits wait, unclaimed, until the pid is claimed
//! ([`TaskService::claim`]). A claim takes an unclaimed exit only if it came after the
//! command started, and only if the pid no longer names a live child of the shim that
//! began since: a recycled pid never receives another process's exit.

use super::{Job, Order, TaskService};
use crate::sys::procfs::{self, Moment};
use crate::sys::reaper::Exit;
use protobuf::MessageField;
use skiff_protos::shim::{WaitRequest, WaitResponse};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How long an exit waits for the process's output to drain before it is reported
/// anyway (a process that leaves a child holding its stdout open).
const OUTPUT_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Exits of pids nobody has claimed: at most this many, and this old.
const UNCLAIMED_LIMIT: usize = 256;
const UNCLAIMED_AGE: Duration = Duration::from_secs(60);

/// Who owns the live pids, and the exits not yet reported.
#[derive(Default)]
pub(super) struct ExitRouter {
    owners: HashMap<u32, Owner>,
    unclaimed: VecDeque<Exit>,
    pending: Vec<Pending>,
}

#[derive(Clone, PartialEq, Eq)]
struct Owner {
    container: String,
    /// Empty for the init.
    exec: String,
}

/// An exit recorded on its process, waiting to be reported.
struct Pending {
    owner: Owner,
    exit: Exit,
    deadline: Instant,
}

/// What claiming a pid found.
#[derive(Debug)]
enum Claimed {
    /// The process runs: its exit will come to its owner.
    Running,
    /// It exited already, with this.
    Exited(Exit),
    /// It is gone and its exit was not seen.
    Lost,
}

/// The pid of a process SIGKILL ended, as the OOM killer ends them.
fn sigkilled(exit: &Exit) -> Option<u32> {
    exit.killed_by(libc::SIGKILL).then_some(exit.pid)
}

/// When an exit waiting to be reported can be.
#[derive(Debug, PartialEq, Eq)]
enum Readiness {
    Now,
    /// When its output has drained, or at this deadline.
    By(Instant),
    /// When the Start of its process has ended; that wakes the loop itself (a job done),
    /// so no deadline of it is one the loop should wake for.
    AfterStart,
}

/// Whether an exit can be reported now: not while its process is being started, and not
/// before its output drained or its deadline passed.
fn readiness(starting: bool, drained: bool, deadline: Instant, now: Instant) -> Readiness {
    if starting {
        Readiness::AfterStart
    } else if drained || now >= deadline {
        Readiness::Now
    } else {
        Readiness::By(deadline)
    }
}

impl ExitRouter {
    fn keep_unclaimed(&mut self, exit: Exit) {
        let now = Instant::now();
        self.unclaimed
            .retain(|e| now.duration_since(e.reaped) < UNCLAIMED_AGE);
        if self.unclaimed.len() >= UNCLAIMED_LIMIT {
            self.unclaimed.pop_front();
        }
        self.unclaimed.push_back(exit);
    }

    /// Gives `pid` to `owner`. `alive`: whether the pid still names the shim's child that
    /// began at or after `since` (the caller asks /proc). A live pid's older kept exits
    /// are another process's; a dead one's exit must have come since the command began.
    fn claim(&mut self, pid: u32, owner: Owner, since: Moment, alive: bool) -> Claimed {
        if alive {
            self.unclaimed.retain(|e| e.pid != pid);
            self.owners.insert(pid, owner);
            return Claimed::Running;
        }
        match self.take_unclaimed(pid, since) {
            Some(exit) => Claimed::Exited(exit),
            None => Claimed::Lost,
        }
    }

    /// The latest unclaimed exit of `pid` reaped since `since`.
    fn take_unclaimed(&mut self, pid: u32, since: Moment) -> Option<Exit> {
        let at = self
            .unclaimed
            .iter()
            .rposition(|e| e.pid == pid && e.reaped >= since.at)?;
        self.unclaimed.remove(at)
    }
}

impl TaskService {
    /// Exits the loop reaped that no runtime command waited for.
    pub fn reaped(&self, exits: Vec<Exit>) {
        for exit in exits {
            let owner = self.exits.lock().unwrap().owners.remove(&exit.pid);
            match owner {
                Some(owner) => self.record_exit(owner, exit),
                None => self.exits.lock().unwrap().keep_unclaimed(exit),
            }
        }
    }

    /// The process `exec_id` of `container` was started as `pid` by a command that
    /// began at `since`: its exit goes to it, whether it comes later or came already.
    pub(super) fn claim(&self, pid: u32, container: &str, exec_id: &str, since: Moment) {
        let owner = Owner {
            container: container.to_string(),
            exec: exec_id.to_string(),
        };
        let claimed = {
            let mut router = self.exits.lock().unwrap();
            // Asked under the lock: only the loop reaps, and it is here.
            let alive = procfs::is_own_child_since(pid, since);
            router.claim(pid, owner.clone(), since, alive)
        };
        match claimed {
            Claimed::Running => {}
            Claimed::Exited(exit) => self.record_exit(owner, exit),
            Claimed::Lost => {
                log::warn!("{container}: pid {pid} is gone and its exit was not seen");
                self.record_exit(owner, Exit::now(pid, 255));
            }
        }
    }

    /// Forgets the owners of a deleted container's or exec's pids.
    pub(super) fn disown(&self, container: &str, exec_id: Option<&str>) {
        let mut router = self.exits.lock().unwrap();
        router
            .owners
            .retain(|_, o| o.container != container || exec_id.is_some_and(|e| o.exec != e));
        router.pending.retain(|p| {
            p.owner.container != container || exec_id.is_some_and(|e| p.owner.exec != e)
        });
    }

    fn record_exit(&self, owner: Owner, exit: Exit) {
        let Ok(c) = self.container(&owner.container) else {
            return;
        };
        let recorded = c.with(&owner.exec, |p| {
            if p.pid() == exit.pid {
                p.exited(exit);
            }
            Ok(())
        });
        if recorded.is_err() {
            return;
        }
        // Looked at now, not when the exit is reported after its output drained: by
        // then the cgroup may be gone (systemd removes an emptied scope at once) and
        // its OOM kill with it.
        if owner.exec.is_empty() && self.oom.check(&owner.container, sigkilled(&exit)) {
            self.announce_oom(&owner.container);
        }
        if owner.exec.is_empty() && c.shares_pid_namespace() {
            self.kill_remaining(&owner.container, c.runtime().clone());
        }
        self.exits.lock().unwrap().pending.push(Pending {
            owner,
            exit,
            deadline: Instant::now() + OUTPUT_DRAIN_TIMEOUT,
        });
    }

    /// A container without a PID namespace of its own keeps its other processes when its
    /// init exits (a worker that forked, an exec): they are killed now, as containerd's
    /// shims do, so that none outlives its container and holds its output open.
    fn kill_remaining(&self, id: &str, runtime: std::sync::Arc<dyn skiff_oci_runtime::OciRuntime>) {
        let id = id.to_string();
        let key = id.clone();
        let work = move || {
            let all = skiff_oci_runtime::KillOptions { all: true };
            if let Err(e) = runtime.kill(&id, libc::SIGKILL as u32, &all) {
                log::warn!("{id}: killing what its init left running: {e}");
            }
        };
        self.own_jobs.lock().unwrap().push(Job::new(
            Order::AtOnce(key),
            work,
            |_: &TaskService, ()| Ok(()),
        ));
    }

    /// Reports the exits whose output has drained (or that waited long enough) and whose
    /// process is not being started. Returns when to look again for the others: the
    /// earliest deadline still ahead, never one of an exit that waits for its Start.
    pub fn report_exits(&self) -> Option<Instant> {
        let waiting = std::mem::take(&mut self.exits.lock().unwrap().pending);
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        let mut still = Vec::new();
        for pending in waiting {
            match self.ready_to_report(&pending, now) {
                Some(Readiness::Now) => self.report_exit(pending),
                Some(Readiness::By(at)) => {
                    next = Some(next.map_or(at, |n| n.min(at)));
                    still.push(pending);
                }
                Some(Readiness::AfterStart) => still.push(pending),
                // The process is gone (deleted).
                None => {}
            }
        }
        self.exits.lock().unwrap().pending.extend(still);
        next
    }

    /// When `pending` can be reported; None when its process is gone.
    fn ready_to_report(&self, pending: &Pending, now: Instant) -> Option<Readiness> {
        let c = self.container(&pending.owner.container).ok()?;
        let (drained, starting) = c
            .with(&pending.owner.exec, |p| {
                Ok((p.output_drained(), p.is_starting()))
            })
            .ok()?;
        let ready = readiness(starting, drained, pending.deadline, now);
        if ready == Readiness::Now && !drained {
            log::warn!(
                "output of {} {} still open {OUTPUT_DRAIN_TIMEOUT:?} after its exit",
                pending.owner.container,
                pending.owner.exec
            );
        }
        Some(ready)
    }

    fn report_exit(&self, pending: Pending) {
        let Pending { owner, exit, .. } = pending;
        let Ok(c) = self.container(&owner.container) else {
            return;
        };
        if owner.exec.is_empty() {
            // An OOM kill of the container is reported before its exit (one counted
            // while the output drained, too).
            if self.oom.check(&owner.container, sigkilled(&exit)) {
                self.announce_oom(&owner.container);
            }
        }
        let reported = c.with(&owner.exec, |p| {
            p.exit_reported();
            Ok(())
        });
        if reported.is_ok() {
            self.announce_exit(&owner.container, &owner.exec, exit);
        }
    }

    /// Wait without blocking: None while the process runs (the server parks the request
    /// and asks again after the next exit is reported).
    pub fn try_wait(&self, req: &WaitRequest) -> super::error::Result<Option<WaitResponse>> {
        let c = self.container(&req.id)?;
        let exit = c.with(&req.exec_id, |p| Ok(p.reported_exit()))?;
        Ok(exit.map(|exit| WaitResponse {
            exit_status: exit.status,
            exited_at: MessageField::some(crate::events::timestamp(exit.at)),
            ..Default::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(exec: &str) -> Owner {
        Owner {
            container: "c".into(),
            exec: exec.into(),
        }
    }

    fn moment(at: Instant) -> Moment {
        Moment { at, boot_ticks: 0 }
    }

    fn exit_at(pid: u32, status: u32, reaped: Instant) -> Exit {
        Exit {
            reaped,
            ..Exit::now(pid, status)
        }
    }

    #[test]
    fn a_live_pid_is_owned_and_its_older_kept_exits_forgotten() {
        let mut r = ExitRouter::default();
        let t0 = Instant::now();
        r.keep_unclaimed(exit_at(40, 1, t0));
        let since = moment(t0 + Duration::from_millis(5));
        assert!(matches!(
            r.claim(40, owner("e"), since, true),
            Claimed::Running
        ));
        assert!(r.unclaimed.is_empty(), "an older process's exit was kept");
        assert!(r.owners.get(&40) == Some(&owner("e")));
    }

    #[test]
    fn a_pid_that_exited_before_its_claim_gets_its_own_exit() {
        let mut r = ExitRouter::default();
        let since = moment(Instant::now());
        r.keep_unclaimed(exit_at(41, 3, since.at + Duration::from_millis(1)));
        match r.claim(41, owner(""), since, false) {
            Claimed::Exited(exit) => assert_eq!((exit.pid, exit.status), (41, 3)),
            other => panic!("claimed {other:?}"),
        }
        assert!(r.owners.is_empty(), "a gone pid is owned by nobody");
    }

    #[test]
    fn an_exit_from_before_the_command_began_is_never_given_to_a_recycled_pid() {
        let mut r = ExitRouter::default();
        let t0 = Instant::now();
        r.keep_unclaimed(exit_at(42, 9, t0));
        let since = moment(t0 + Duration::from_millis(5));
        assert!(matches!(
            r.claim(42, owner(""), since, false),
            Claimed::Lost
        ));
        assert_eq!(
            r.unclaimed.len(),
            1,
            "the older exit stays for its own claim"
        );
    }

    #[test]
    fn of_two_kept_exits_of_one_pid_the_latest_is_claimed() {
        let mut r = ExitRouter::default();
        let since = moment(Instant::now());
        r.keep_unclaimed(exit_at(43, 1, since.at + Duration::from_millis(1)));
        r.keep_unclaimed(exit_at(43, 2, since.at + Duration::from_millis(2)));
        match r.claim(43, owner(""), since, false) {
            Claimed::Exited(exit) => assert_eq!(exit.status, 2),
            other => panic!("claimed {other:?}"),
        }
    }

    #[test]
    fn kept_exits_are_bounded() {
        let mut r = ExitRouter::default();
        let now = Instant::now();
        for pid in 0..(UNCLAIMED_LIMIT as u32 + 10) {
            r.keep_unclaimed(exit_at(pid, 0, now));
        }
        assert_eq!(r.unclaimed.len(), UNCLAIMED_LIMIT);
        assert_eq!(
            r.unclaimed.front().map(|e| e.pid),
            Some(10),
            "the oldest go first"
        );
        // And an old one goes when the next comes.
        let mut r = ExitRouter::default();
        if let Some(long_ago) = now.checked_sub(UNCLAIMED_AGE + Duration::from_secs(1)) {
            r.keep_unclaimed(exit_at(1, 0, long_ago));
            r.keep_unclaimed(exit_at(2, 0, now));
            assert_eq!(r.unclaimed.iter().map(|e| e.pid).collect::<Vec<_>>(), [2]);
        }
    }

    #[test]
    fn an_exit_waiting_for_its_start_gives_no_deadline_to_wake_for() {
        let now = Instant::now();
        let past = now - Duration::from_secs(3);
        let ahead = now + Duration::from_secs(1);
        assert_eq!(readiness(true, false, past, now), Readiness::AfterStart);
        assert_eq!(readiness(true, true, ahead, now), Readiness::AfterStart);
        assert_eq!(readiness(false, false, ahead, now), Readiness::By(ahead));
        assert_eq!(readiness(false, false, past, now), Readiness::Now);
        assert_eq!(readiness(false, true, ahead, now), Readiness::Now);
    }
}
