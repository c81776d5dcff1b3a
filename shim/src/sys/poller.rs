//! The epoll instance the shim's one loop waits on. The server registers its sockets
//! here, the stdio pumps their pipes and FIFOs; each registration carries a [`Token`]
//! that says whose it is.

use super::token::Token;
pub use nix::sys::epoll::EpollEvent as Event;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollFlags, EpollTimeout};
use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

pub struct Poller(Epoll);

/// Readiness for input, including the peer hanging up.
pub const READABLE: u32 = (libc::EPOLLIN | libc::EPOLLRDHUP) as u32;
/// Edge-triggered: reported once per change, for fds that are drained to EAGAIN.
pub const EDGE: u32 = libc::EPOLLET as u32;
pub const WRITABLE: u32 = libc::EPOLLOUT as u32;

impl Poller {
    pub fn new() -> io::Result<Poller> {
        Ok(Poller(Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?))
    }

    pub fn add(&self, fd: impl AsFd, events: u32, token: Token) -> io::Result<()> {
        Ok(self.0.add(fd, event(events, token))?)
    }

    pub fn modify(&self, fd: impl AsFd, events: u32, token: Token) -> io::Result<()> {
        Ok(self.0.modify(fd, &mut event(events, token))?)
    }

    /// Deregisters a descriptor; one that was not registered is no error.
    pub fn remove(&self, fd: impl AsFd) {
        let _ = self.0.delete(fd);
    }

    /// Waits for readiness at most `timeout`; returns how many entries of `events` are
    /// filled (0 on timeout or interruption).
    pub fn wait(&self, events: &mut [Event], timeout: Duration) -> usize {
        let timeout = EpollTimeout::try_from(timeout).unwrap_or(EpollTimeout::MAX);
        self.0.wait(events, timeout).unwrap_or(0)
    }
}

impl AsFd for Poller {
    /// Readable when a registration is ready: a set another loop can wait on.
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0 .0.as_fd()
    }
}

/// An empty event buffer for [`Poller::wait`].
pub fn events<const N: usize>() -> [Event; N] {
    [Event::empty(); N]
}

/// (readiness bits, token) of an event; None for a token nobody registered.
pub fn parts(ev: &Event) -> (u32, Option<Token>) {
    (ev.events().bits() as u32, Token::from_raw(ev.data()))
}

fn event(events: u32, token: Token) -> Event {
    Event::new(EpollFlags::from_bits_retain(events as i32), token.to_raw())
}
