//! OOM watches: one epoll set holds the OOM watch fd of every container the shim serves,
//! and the server's loop waits on that set with its sockets, so watching costs no
//! thread. A watch firing, or the exit handler asking before it reports an init's exit,
//! compares the cgroup's OOM-kill counter with what was last seen, so each kill is told
//! once (and the task model reports it before the exit).

use skiff_cgroups::{Cgroup, OomWatch};
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

pub struct OomWatcher {
    epoll: OwnedFd,
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
        // SAFETY: epoll_create1 returns a new fd or -1.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let watcher = Arc::new(OomWatcher {
            // SAFETY: fd was just created.
            epoll: unsafe { OwnedFd::from_raw_fd(fd) },
            state: Mutex::new(State::default()),
        });
        Ok(watcher)
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
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: registering a valid fd with our epoll instance.
        let rc = unsafe {
            libc::epoll_ctl(
                self.epoll.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                watch.as_raw_fd(),
                &mut ev,
            )
        };
        if rc != 0 {
            log::warn!("{container_id}: epoll_ctl: {}", io::Error::last_os_error());
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
    pub fn fd(&self) -> std::os::fd::RawFd {
        self.epoll.as_raw_fd()
    }

    /// The containers with new OOM kills among the watches that fired (called when
    /// [`OomWatcher::fd`] is readable).
    pub fn process_ready(&self) -> Vec<String> {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 16];
        // SAFETY: epoll_wait into a local array, without blocking.
        let n = unsafe {
            libc::epoll_wait(
                self.epoll.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as i32,
                0,
            )
        };
        let mut st = self.state.lock().unwrap();
        let mut killed = Vec::new();
        for ev in events.iter().take(n.max(0) as usize) {
            let token = ev.u64;
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
