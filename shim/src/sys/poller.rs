//! The epoll instance the shim's one loop waits on. The server registers its sockets
//! here, the stdio pumps their pipes and FIFOs; each registration carries a token that
//! says whose it is (see [`crate::server::event_loop`] and [`crate::stdio`]).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

pub struct Poller(OwnedFd);

/// Readiness for input, including the peer hanging up.
pub const READABLE: u32 = (libc::EPOLLIN | libc::EPOLLRDHUP) as u32;
/// Edge-triggered: reported once per change, for fds that are drained to EAGAIN.
pub const EDGE: u32 = libc::EPOLLET as u32;
pub const WRITABLE: u32 = libc::EPOLLOUT as u32;

impl Poller {
    pub fn new() -> io::Result<Poller> {
        // SAFETY: epoll_create1 returns a new descriptor or -1.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: just created, owned here.
        Ok(Poller(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    pub fn add(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: registers a descriptor the caller owns with our epoll instance.
        if unsafe { libc::epoll_ctl(self.0.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Changes what `fd` is watched for. Hang-ups and errors are always reported.
    pub fn modify(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: changes the registration of a descriptor the caller owns.
        if unsafe { libc::epoll_ctl(self.0.as_raw_fd(), libc::EPOLL_CTL_MOD, fd, &mut ev) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    pub fn remove(&self, fd: RawFd) {
        // SAFETY: deregisters a descriptor; an fd that was not registered is harmless.
        unsafe {
            libc::epoll_ctl(
                self.0.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd,
                std::ptr::null_mut(),
            )
        };
    }

    /// Waits for readiness at most `timeout`; returns how many entries of `events` are
    /// filled (0 on timeout or interruption).
    pub fn wait(&self, events: &mut [libc::epoll_event], timeout: Duration) -> usize {
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: waits on our epoll instance into the caller's array.
        let n = unsafe {
            libc::epoll_wait(
                self.0.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as i32,
                ms,
            )
        };
        n.max(0) as usize
    }
}
