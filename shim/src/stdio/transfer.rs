//! One step of one copy: moving what a source holds now to its target, at most a budget
//! of bytes, so that one fast writer never keeps the loop from the others and from the
//! socket. splice(2) where both ends allow it; a buffer through the shim where not (a
//! pty master, whose splice holds data back; a file opened to append).

use nix::errno::Errno;
use nix::fcntl::SpliceFFlags;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// What one step moves at the most before the loop serves the others.
pub const BUDGET: usize = 256 * 1024;
const BUFFER: usize = 32 * 1024;

/// How a copy moves bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Transfer {
    /// splice(2) from a pipe, without copying through the shim.
    Splice,
    /// read and write through a buffer.
    Buffered,
}

/// Where a step left the copy.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// The source is empty for now.
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
    /// The source reported a hang-up: its end is near, and no edge will follow.
    pub hung_up: bool,
    /// An input copy ends when its target fails (the process will read no more).
    pub input: bool,
    buf: Vec<u8>,
    /// Bytes of `buf` read but not yet written.
    pending: std::ops::Range<usize>,
}

impl Ends {
    pub fn new(source: OwnedFd, target: OwnedFd, transfer: Transfer, input: bool) -> Ends {
        Ends {
            source,
            target: Some(target),
            transfer,
            hung_up: false,
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
        let target = self.target.as_ref().expect("a target").as_fd();
        let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
        let mut moved = 0;
        loop {
            match nix::fcntl::splice(self.source.as_fd(), None, target, None, BUDGET, flags) {
                Ok(0) => return Ok(Step::Ended),
                Ok(n) => {
                    moved += n;
                    // Less than asked: the source is empty, or the target full. (After
                    // a hang-up, ask again: the end is only seen as a splice of 0.)
                    if n < BUDGET && !self.hung_up {
                        return Ok(self.empty_or_blocked());
                    }
                    if moved >= BUDGET {
                        return Ok(Step::Again);
                    }
                }
                Err(Errno::EINTR) => continue,
                // Either side would block: the source is empty, or the target full.
                Err(Errno::EAGAIN) => return Ok(self.empty_or_blocked()),
                Err(Errno::EINVAL) => {
                    self.transfer = Transfer::Buffered;
                    return self.buffered();
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// After a splice that stopped short: data left in the source means the target is
    /// full. So does EAGAIN from a source whose writers are gone: at its end, splice
    /// still asks the target for room before it can return 0.
    fn empty_or_blocked(&self) -> Step {
        if self.hung_up || unread(&self.source) > 0 {
            Step::Blocked
        } else {
            Step::Idle
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
        match nix::unistd::read(fd.as_raw_fd(), buf) {
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
