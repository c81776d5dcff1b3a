//! One step of one copy: moving what a source holds now to its target, at most a budget
//! of bytes, so that one fast writer never keeps the loop from the others and from the
//! socket. splice(2) where both ends allow it; a buffer through the shim where not (a
//! pty master, whose splice holds data back; a file opened to append).
//!
//! A step says why it stopped from what the kernel says now, never from a guess: a write
//! that returns EAGAIN means the target is full, a read that returns EAGAIN that the
//! source is empty. A splice that stops short or returns EAGAIN does not say which end
//! stopped it, so the step then asks both ends (poll(2) with no timeout): room in the
//! target by the same measure the kernel's splice uses, data or an end in the source.

use nix::errno::Errno;
use nix::fcntl::SpliceFFlags;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// What one step moves at the most before the loop serves the others.
pub const BUDGET: usize = 256 * 1024;
const BUFFER: usize = 32 * 1024;
/// Splices that move nothing although both ends said they were ready, before a step
/// gives the loop back (the kernel does not do this; a bound keeps a surprise finite).
const FRUITLESS: u32 = 4;

/// How a copy moves bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Transfer {
    /// splice(2) from a pipe, without copying through the shim.
    Splice,
    /// read and write through a buffer.
    Buffered,
}

/// Where a step left the copy.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Step {
    /// The source is empty for now, and the target has room.
    Idle,
    /// The target is full; the copy goes on when it drains.
    Blocked,
    /// The budget is spent and the source may hold more: run again soon.
    Again,
    Ended,
}

/// The two ends of a copy and what is in flight between them.
pub struct Ends {
    pub source: OwnedFd,
    /// None once the target failed: the source is then drained and dropped, so that the
    /// container never blocks on a full pipe.
    pub target: Option<OwnedFd>,
    pub transfer: Transfer,
    /// An input copy ends when its target fails (the process will read no more).
    pub input: bool,
    buf: Vec<u8>,
    /// Bytes of `buf` read but not yet written.
    pending: std::ops::Range<usize>,
}

/// What poll(2) says of the two ends now.
struct Readiness {
    /// The source holds data, or its end (a hang-up) is there to be read.
    source: bool,
    /// The target has room, or has failed (the next write says how).
    target: bool,
}

impl Ends {
    pub fn new(source: OwnedFd, target: OwnedFd, transfer: Transfer, input: bool) -> Ends {
        Ends {
            source,
            target: Some(target),
            transfer,
            input,
            buf: Vec::new(),
            pending: 0..0,
        }
    }

    /// Moves what there is, up to [`BUDGET`].
    pub fn step(&mut self) -> Step {
        loop {
            let step = match (self.target.is_some(), self.transfer) {
                (false, _) => return self.discard(),
                (true, Transfer::Splice) => self.splice(),
                (true, Transfer::Buffered) => self.buffered(),
            };
            match step {
                Ok(step) => return step,
                Err(e) => {
                    if e.raw_os_error() != Some(libc::EPIPE) {
                        log::warn!("copying container stdio: {e}");
                    }
                    if self.input {
                        return Step::Ended;
                    }
                    self.target = None;
                }
            }
        }
    }

    /// Ok(step), or Err when the target failed.
    fn splice(&mut self) -> io::Result<Step> {
        let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
        let mut moved = 0;
        let mut fruitless = 0;
        loop {
            let target = self.target.as_ref().expect("a target").as_fd();
            let len = BUDGET - moved;
            let stopped =
                match nix::fcntl::splice(self.source.as_fd(), None, target, None, len, flags) {
                    // The source's writers are gone and it is empty.
                    Ok(0) => return Ok(Step::Ended),
                    Ok(n) => {
                        moved += n;
                        fruitless = 0;
                        if moved >= BUDGET {
                            return Ok(Step::Again);
                        }
                        // Short: the source ran dry or the target filled up.
                        n < len
                    }
                    Err(Errno::EINTR) => continue,
                    // Either side would block (at its end, a source still needs room in the
                    // target before splice can say 0).
                    Err(Errno::EAGAIN) => {
                        fruitless += 1;
                        true
                    }
                    Err(Errno::EINVAL) => {
                        self.transfer = Transfer::Buffered;
                        return self.buffered();
                    }
                    Err(e) => return Err(e.into()),
                };
            if !stopped {
                continue;
            }
            let now = self.readiness();
            if !now.target {
                return Ok(Step::Blocked);
            }
            if !now.source {
                return Ok(Step::Idle);
            }
            if fruitless >= FRUITLESS {
                return Ok(Step::Again);
            }
            // Both ends moved on since the splice: splice again.
        }
    }

    fn readiness(&self) -> Readiness {
        let target = self.target.as_ref().expect("a target");
        let mut fds = [
            PollFd::new(self.source.as_fd(), PollFlags::POLLIN),
            PollFd::new(target.as_fd(), PollFlags::POLLOUT),
        ];
        loop {
            match poll(&mut fds, PollTimeout::ZERO) {
                Err(Errno::EINTR) => continue,
                // poll on two valid fds does not fail otherwise; say "both ready" so that
                // the next splice reports whatever is wrong.
                Err(_) => {
                    return Readiness {
                        source: true,
                        target: true,
                    }
                }
                Ok(_) => break,
            }
        }
        let seen = |fd: &PollFd| fd.revents().unwrap_or(PollFlags::empty());
        let any = PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL;
        Readiness {
            source: seen(&fds[0]).intersects(PollFlags::POLLIN | any),
            target: seen(&fds[1]).intersects(PollFlags::POLLOUT | any),
        }
    }

    fn buffered(&mut self) -> io::Result<Step> {
        if self.buf.is_empty() {
            self.buf = vec![0; BUFFER];
        }
        let mut moved = 0;
        loop {
            if !self.pending.is_empty() {
                let target = self.target.as_ref().expect("a target");
                match nix::unistd::write(target, &self.buf[self.pending.clone()]) {
                    Ok(n) => {
                        self.pending.start += n;
                        moved += n;
                        continue;
                    }
                    Err(Errno::EINTR) => continue,
                    Err(Errno::EAGAIN) => return Ok(Step::Blocked),
                    Err(e) => return Err(e.into()),
                }
            }
            if moved >= BUDGET {
                return Ok(Step::Again);
            }
            match read(&self.source, &mut self.buf) {
                Ok(0) => return Ok(Step::Ended),
                Ok(n) => self.pending = 0..n,
                Err(step) => return Ok(step),
            }
        }
    }

    /// The target is gone: take the output off the pipe and drop it.
    fn discard(&mut self) -> Step {
        let mut scratch = [0u8; 8192];
        let mut moved = 0;
        while moved < BUDGET {
            match read(&self.source, &mut scratch) {
                Ok(0) => return Step::Ended,
                Ok(n) => moved += n,
                Err(step) => return step,
            }
        }
        Step::Again
    }
}

/// Bytes waiting to be read in a pipe or FIFO (0 when it cannot tell).
pub fn unread(fd: &OwnedFd) -> usize {
    nix::ioctl_read_bad!(fionread, libc::FIONREAD, libc::c_int);
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through a pointer to a local.
    match unsafe { fionread(fd.as_raw_fd(), &mut n) } {
        Ok(_) => n.max(0) as usize,
        Err(_) => 0,
    }
}

/// Reads what is there: Ok(0) at the end, Err(Idle) when empty for now.
fn read(fd: &OwnedFd, buf: &mut [u8]) -> Result<usize, Step> {
    loop {
        match nix::unistd::read(fd, buf) {
            Ok(n) => return Ok(n),
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => return Err(Step::Idle),
            // A pty master whose every slave closed reports EIO.
            Err(Errno::EIO) => return Ok(0),
            Err(e) => {
                log::warn!("reading container stdio: {e}");
                return Ok(0);
            }
        }
    }
}
