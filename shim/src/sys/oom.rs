//! OOM watches: one epoll set holds the OOM watch fd of every container the shim serves,
//! and the server's loop waits on that set with its sockets, so watching costs no
//! thread. A watch firing, or the exit handler asking before it reports an init's exit,
//! compares the cgroup's OOM-kill counter with what was last seen, so each kill is told
//! once (and the task model reports it before the exit).
//!
//! A container in a systemd scope can lose its cgroup before the shim reads it: systemd
//! removes an emptied scope at once, with its memory.events, and its init is then a
//! zombie the shim has not reaped yet. For those, the kernel's log says whether the init
//! was OOM-killed ([`crate::sys::kmsg`]): only this container's own counter or its own
//! init's pid are evidence, never a count shared with other cgroups.

use crate::sys::kmsg::OomKillLog;
use crate::sys::poller::{self, Poller};
use crate::sys::token::Token;
use skiff_cgroups::{Cgroup, OomWatch};
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Arc, Mutex};

pub struct OomWatcher {
    epoll: Poller,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next_token: u64,
    by_token: HashMap<u64, Watched>,
    tokens: HashMap<String, u64>,
    kernel_log: OomKillLog,
}

struct Watched {
    container_id: String,
    cgroup: Cgroup,
    watch: OomWatch,
    /// OOM kills already reported.
    reported: u64,
    /// For a cgroup that can go before its init is reaped (a systemd scope): the kernel
    /// log's mark when its kills were last accounted for.
    logged_since: Option<u64>,
}

impl OomWatcher {
    pub fn start() -> io::Result<Arc<OomWatcher>> {
        Ok(Arc::new(OomWatcher {
            epoll: Poller::new()?,
            state: Mutex::new(State::default()),
        }))
    }

    /// Watches a container's cgroup. A cgroup without a memory controller is not an
    /// error: there is nothing to watch.
    pub fn add(&self, container_id: &str, cgroup: Cgroup) {
        let watch = match OomWatch::new(&cgroup) {
            Ok(w) => w,
            Err(e) => {
                log::warn!("{container_id}: cannot watch for OOM kills: {e}");
                return;
            }
        };
        let mut st = self.state.lock().unwrap();
        st.next_token += 1;
        let token = st.next_token;
        if let Err(e) = self
            .epoll
            .add(&watch, libc::EPOLLIN as u32, Token::OomWatch(token))
        {
            log::warn!("{container_id}: watching for OOM kills: {e}");
            return;
        }
        let reported = cgroup.oom_kills().unwrap_or(0);
        let logged_since = goes_when_empty(&cgroup).then(|| st.kernel_log.mark());
        st.tokens.insert(container_id.to_string(), token);
        st.by_token.insert(
            token,
            Watched {
                container_id: container_id.to_string(),
                cgroup,
                watch,
                reported,
                logged_since,
            },
        );
    }

    pub fn remove(&self, container_id: &str) {
        let mut st = self.state.lock().unwrap();
        if let Some(token) = st.tokens.remove(container_id) {
            // Closing the fd removes it from the epoll set.
            st.by_token.remove(&token);
        }
    }

    /// Whether the container had OOM kills not told yet. `sigkilled`: the pid of its init
    /// when the init died of SIGKILL, as the OOM killer kills. Then a cgroup already
    /// removed is judged by the kernel's log: whether it logged an OOM kill of that pid.
    pub fn check(&self, container_id: &str, sigkilled: Option<u32>) -> bool {
        let mut st = self.state.lock().unwrap();
        let State {
            tokens,
            by_token,
            kernel_log,
            ..
        } = &mut *st;
        let Some(w) = tokens.get(container_id).and_then(|t| by_token.get_mut(t)) else {
            return false;
        };
        let gone = !w.cgroup.memory_dir().is_some_and(|d| d.exists());
        let killed = match (gone, sigkilled, w.logged_since) {
            (true, Some(pid), Some(since)) => kernel_log.killed_since(pid, since),
            _ => Self::new_kills(w, false),
        };
        if killed {
            Self::accounted(w, kernel_log);
        }
        killed
    }

    /// After kills of `w`'s container were told, the kernel's records of them are old.
    fn accounted(w: &mut Watched, kernel_log: &mut OomKillLog) {
        if w.logged_since.is_some() {
            w.logged_since = Some(kernel_log.mark());
        }
    }

    /// Whether the counter moved since last seen (or, without a counter, the watch woke).
    fn new_kills(w: &mut Watched, woken: bool) -> bool {
        // On cgroup v1 the kernel also signals the eventfd when the cgroup is removed:
        // that is not an OOM.
        if !w.cgroup.memory_dir().is_some_and(|d| d.exists()) {
            return false;
        }
        let kills = w.cgroup.oom_kills();
        match kills {
            Some(n) if n > w.reported => {
                w.reported = n;
                true
            }
            Some(_) => false,
            // No counter (old kernels): a wake-up of the watch is the event.
            None => woken,
        }
    }

    /// The epoll set to wait on: readable when a watch fired.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }

    /// The containers with new OOM kills among the watches that fired (called when
    /// [`OomWatcher::fd`] is readable).
    pub fn process_ready(&self) -> Vec<String> {
        let mut events = poller::events::<16>();
        let n = self.epoll.wait(&mut events, std::time::Duration::ZERO);
        let mut st = self.state.lock().unwrap();
        let State {
            by_token,
            kernel_log,
            ..
        } = &mut *st;
        let mut killed = Vec::new();
        for ev in &events[..n] {
            let (_, token) = poller::parts(ev);
            let Some(Token::OomWatch(token)) = token else {
                continue;
            };
            if let Some(w) = by_token.get_mut(&token) {
                w.watch.drain();
                if Self::new_kills(w, true) {
                    killed.push(w.container_id.clone());
                    Self::accounted(w, kernel_log);
                }
            }
        }
        killed
    }
}

/// Whether the cgroup is a systemd scope (the systemd cgroup driver's): systemd removes it
/// as soon as it is empty, which can be before the shim reaps the init. Other cgroups
/// stay until the runtime deletes the container, after its exit was told.
fn goes_when_empty(cgroup: &Cgroup) -> bool {
    cgroup
        .memory_dir()
        .and_then(|d| d.file_name())
        .is_some_and(|name| name.to_string_lossy().ends_with(".scope"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    /// A parent cgroup v2 (a slice) with child scopes, as files in a temporary directory.
    fn slice(name: &str, children: &[&str]) -> PathBuf {
        let root = std::env::temp_dir().join(format!("skiff-oom-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for dir in [""].iter().chain(children) {
            std::fs::create_dir_all(root.join(dir)).unwrap();
            kills(&root.join(dir), 0);
        }
        root
    }

    fn kills(dir: &Path, n: u64) {
        std::fs::write(
            dir.join("memory.events"),
            format!("oom {n}\noom_kill {n}\n"),
        )
        .unwrap();
    }

    /// A watcher whose kernel log is fed by the test.
    fn watcher(root: &Path, children: &[&str]) -> Arc<OomWatcher> {
        let w = OomWatcher::start().unwrap();
        w.state.lock().unwrap().kernel_log = OomKillLog::unopened();
        for c in children {
            w.add(c, Cgroup::V2 { dir: root.join(c) });
        }
        w
    }

    fn logged(w: &OomWatcher, record: &str) {
        w.state.lock().unwrap().kernel_log.take(record);
    }

    #[test]
    fn a_sigkilled_init_whose_scope_is_gone_is_judged_by_its_own_pid_only() {
        let root = slice("gone", &["a.scope", "b.scope"]);
        let w = watcher(&root, &["a.scope", "b.scope"]);
        // Another cgroup of the slice is OOM-killed (its count is the parent's too);
        // then a's init is SIGKILLed and systemd removes its scope before the shim looks.
        kills(&root, 1);
        logged(
            &w,
            "3,40,1,-;Memory cgroup out of memory: Killed process 999 (hog) x\n",
        );
        std::fs::remove_dir_all(root.join("a.scope")).unwrap();
        assert!(
            !w.check("a.scope", Some(100)),
            "a sibling's OOM told as a's"
        );
        // b's init is OOM-killed, and its scope is gone too.
        kills(&root, 2);
        logged(
            &w,
            "3,41,1,-;Memory cgroup out of memory: Killed process 200 (sh) x\n",
        );
        std::fs::remove_dir_all(root.join("b.scope")).unwrap();
        assert!(!w.check("b.scope", None), "not killed by SIGKILL: no OOM");
        assert!(w.check("b.scope", Some(200)));
        assert!(!w.check("b.scope", Some(200)), "told once");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_kill_counted_before_the_scope_went_is_not_told_again() {
        let root = slice("counted", &["c.scope"]);
        let w = watcher(&root, &["c.scope"]);
        kills(&root.join("c.scope"), 1);
        logged(
            &w,
            "3,7,1,-;Memory cgroup out of memory: Killed process 300 (sh) x\n",
        );
        assert!(w.check("c.scope", None), "counted in its own cgroup");
        std::fs::remove_dir_all(root.join("c.scope")).unwrap();
        assert!(!w.check("c.scope", Some(300)), "told twice");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_cgroup_that_stays_until_delete_is_judged_by_its_counter_alone() {
        let root = slice("cgroupfs", &["d"]);
        let w = watcher(&root, &["d"]);
        logged(
            &w,
            "3,9,1,-;Memory cgroup out of memory: Killed process 400 (sh) x\n",
        );
        std::fs::remove_dir_all(root.join("d")).unwrap();
        assert!(
            !w.check("d", Some(400)),
            "no log is read for a cgroupfs cgroup"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
