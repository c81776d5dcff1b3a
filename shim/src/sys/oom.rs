//! OOM watches: one epoll set holds the OOM watch fd of every container the shim serves,
//! and the server's loop waits on that set with its sockets, so watching costs no
//! thread. A watch firing, or the exit handler asking before it reports an init's exit,
//! compares the cgroup's OOM-kill counter with what was last seen, so each kill is told
//! once (and the task model reports it before the exit).

use crate::sys::poller::{self, Poller};
use skiff_cgroups::{Cgroup, OomWatch};
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
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
}

struct Watched {
    container_id: String,
    cgroup: Cgroup,
    watch: OomWatch,
    /// OOM kills already reported.
    reported: u64,
    /// The parent's count (v2) when this container's kills were last accounted for.
    parent_seen: Option<u64>,
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
        if let Err(e) = self.epoll.add(&watch, libc::EPOLLIN as u32, token) {
            log::warn!("{container_id}: watching for OOM kills: {e}");
            return;
        }
        let reported = cgroup.oom_kills().unwrap_or(0);
        let parent_seen = cgroup.parent_oom_kills();
        st.tokens.insert(container_id.to_string(), token);
        st.by_token.insert(
            token,
            Watched {
                container_id: container_id.to_string(),
                cgroup,
                watch,
                reported,
                parent_seen,
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

    /// Whether the container had OOM kills not told yet. `sigkilled`: its init died of
    /// SIGKILL, as the OOM killer kills. Then a cgroup already removed (systemd removes
    /// an emptied scope at once) is judged by its parent's count: a kill there since
    /// this container's were last accounted for.
    pub fn check(&self, container_id: &str, sigkilled: bool) -> bool {
        let mut st = self.state.lock().unwrap();
        let Some(token) = st.tokens.get(container_id).copied() else {
            return false;
        };
        let Some(w) = st.by_token.get_mut(&token) else {
            return false;
        };
        let gone = !w.cgroup.memory_dir().is_some_and(|d| d.exists());
        let killed = if gone && sigkilled {
            let now = w.cgroup.parent_oom_kills();
            let grew = matches!((now, w.parent_seen), (Some(n), Some(seen)) if n > seen);
            w.parent_seen = now;
            grew
        } else {
            Self::new_kills(w, false)
        };
        if killed {
            Self::account_siblings(&mut st, token);
        }
        killed
    }

    /// After a kill was told for `token`'s container, the watches under the same parent
    /// (its own included) see the parent's count past it, so that it is never told for
    /// a sibling too.
    fn account_siblings(st: &mut State, token: u64) {
        let parent_of = |w: &Watched| {
            w.cgroup
                .memory_dir()
                .and_then(|d| d.parent())
                .map(Path::to_path_buf)
        };
        let Some(w) = st.by_token.get(&token) else {
            return;
        };
        // One parent, so one read of its count for all of them.
        let (Some(parent), Some(count)) = (parent_of(w), w.cgroup.parent_oom_kills()) else {
            return;
        };
        for w in st.by_token.values_mut() {
            if parent_of(w).as_ref() == Some(&parent) {
                w.parent_seen = Some(count);
            }
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
        let mut killed = Vec::new();
        for ev in &events[..n] {
            let (_, token) = poller::parts(ev);
            if let Some(w) = st.by_token.get_mut(&token) {
                w.watch.drain();
                if Self::new_kills(w, true) {
                    killed.push(w.container_id.clone());
                    Self::account_siblings(&mut st, token);
                }
            }
        }
        killed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A parent cgroup v2 with two children, as files in a temporary directory.
    fn pod(name: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("skiff-oom-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for dir in ["", "a", "b"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
            std::fs::write(root.join(dir).join("memory.events"), "oom 0\noom_kill 0\n").unwrap();
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

    #[test]
    fn a_sigkilled_init_whose_cgroup_is_gone_is_judged_by_its_parent_once() {
        let root = pod("gone");
        let w = OomWatcher::start().unwrap();
        w.add(
            "a",
            Cgroup::V2 {
                dir: root.join("a"),
            },
        );
        w.add(
            "b",
            Cgroup::V2 {
                dir: root.join("b"),
            },
        );
        // a is OOM-killed; systemd removes its scope before the shim looks.
        kills(&root, 1);
        std::fs::remove_dir_all(root.join("a")).unwrap();
        assert!(!w.check("a", false), "not killed by SIGKILL: no OOM");
        kills(&root, 2);
        assert!(w.check("a", true));
        assert!(!w.check("a", true), "told once");
        // b's kill is counted from its own cgroup and is not told again for a sibling.
        kills(&root.join("b"), 1);
        kills(&root, 3);
        assert!(w.check("b", false));
        std::fs::remove_dir_all(root.join("b")).unwrap();
        assert!(!w.check("b", true));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
