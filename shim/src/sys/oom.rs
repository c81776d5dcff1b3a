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
        st.tokens.insert(container_id.to_string(), token);
        st.by_token.insert(
            token,
            Watched {
                container_id: container_id.to_string(),
                cgroup,
                watch,
                reported,
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

    /// Whether the container had OOM kills not told yet.
    pub fn check(&self, container_id: &str) -> bool {
        let mut st = self.state.lock().unwrap();
        let Some(token) = st.tokens.get(container_id).copied() else {
            return false;
        };
        st.by_token
            .get_mut(&token)
            .is_some_and(|w| Self::new_kills(w, false))
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
                }
            }
        }
        killed
    }
}
