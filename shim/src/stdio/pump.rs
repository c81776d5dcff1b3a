//! Pumps: the copies between a container's stdio and the manager's, run by the shim's
//! one event loop instead of a thread per stream. Every fd is non-blocking and
//! registered edge-triggered; a pump moves bytes until its source is empty (it waits
//! for the next edge), its target is full (it waits for the target to drain), or its
//! source ends (it closes the target, which is how the manager learns the stream
//! ended).
//!
//! While a target is full, its source is not watched: the container's small writes then
//! collect in the pipe instead of each waking the loop for a copy that cannot be made,
//! and the copy resumes in one go when the target has room.

use crate::poller::{Poller, EDGE, READABLE, WRITABLE};
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Tokens of pump registrations have this bit set; the server's own are plain fds.
pub const TOKEN: u64 = 1 << 63;
/// Set in the token of a pump's target registration.
const TARGET: u64 = 1 << 62;
const BUFFER: usize = 32 * 1024;
const SPLICE_CHUNK: usize = 1 << 20;
const HANGUP: u32 = (libc::EPOLLHUP | libc::EPOLLRDHUP | libc::EPOLLERR) as u32;

/// How a pump moves bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Transfer {
    /// splice(2) from a pipe, without copying through the shim.
    Splice,
    /// read and write through a buffer: for a pty master, whose splice holds data back
    /// until more comes, and for targets splice refuses (files opened to append).
    Buffered,
}

/// One copy to run.
pub struct Copy {
    pub source: OwnedFd,
    pub target: OwnedFd,
    pub transfer: Transfer,
    /// Counts the running output copies of a process; decremented when this one ends.
    pub outputs: Option<Arc<AtomicUsize>>,
    /// Input copies wait for the manager's first write: a FIFO nobody has opened for
    /// writing reads as ended, so they must not be run before the loop reports them.
    pub input: bool,
}

struct Pump {
    source: OwnedFd,
    /// None once the target failed: the source is then drained and dropped, so that
    /// the container never blocks on a full pipe.
    target: Option<OwnedFd>,
    target_polled: bool,
    /// The target was full: the source is unwatched, the target watched.
    blocked: bool,
    /// The source reported a hang-up: its end is near, and no edge will follow.
    hung_up: bool,
    transfer: Transfer,
    buf: Vec<u8>,
    /// Bytes of `buf` read but not yet written.
    pending: std::ops::Range<usize>,
    outputs: Option<Arc<AtomicUsize>>,
    input: bool,
    /// The source has reported readiness at least once. Until then an input's FIFO
    /// has never had a writer and must not be read (it would read as ended), even
    /// when its target reports room.
    started: bool,
}

enum Step {
    /// The source is empty for now.
    Idle,
    /// The target is full; the pump goes on when it drains.
    Blocked,
    Ended,
}

pub struct Pumps {
    poller: Arc<Poller>,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    next: u64,
    pumps: HashMap<u64, Pump>,
}

impl Pumps {
    pub fn new(poller: Arc<Poller>) -> Pumps {
        Pumps {
            poller,
            table: Mutex::new(Table::default()),
        }
    }

    /// Starts a copy; returns its id.
    pub fn add(&self, copy: Copy) -> io::Result<u64> {
        set_nonblocking(copy.source.as_raw_fd())?;
        set_nonblocking(copy.target.as_raw_fd())?;
        let mut table = self.table.lock().unwrap();
        table.next += 1;
        let id = table.next;
        let token = TOKEN | id;
        self.poller
            .add(copy.source.as_raw_fd(), READABLE | EDGE, token)?;
        // Regular files cannot be polled (EPERM) and never fill up.
        let target_polled =
            match self
                .poller
                .add(copy.target.as_raw_fd(), WRITABLE | EDGE, token | TARGET)
            {
                Ok(()) => true,
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => false,
                Err(e) => {
                    self.poller.remove(copy.source.as_raw_fd());
                    return Err(e);
                }
            };
        if let Some(outputs) = &copy.outputs {
            outputs.fetch_add(1, Ordering::SeqCst);
        }
        let pump = Pump {
            source: copy.source,
            target: Some(copy.target),
            target_polled,
            blocked: false,
            hung_up: false,
            transfer: copy.transfer,
            buf: Vec::new(),
            pending: 0..0,
            outputs: copy.outputs,
            input: copy.input,
            started: !copy.input,
        };
        table.pumps.insert(id, pump);
        if !copy.input {
            self.run(&mut table, id);
        }
        Ok(id)
    }

    /// The loop reports readiness `events` for `token` (one with [`TOKEN`] set). True
    /// when a copy ended: an exit may have been waiting for it.
    pub fn ready(&self, token: u64, events: u32) -> bool {
        let id = token & !(TOKEN | TARGET);
        let mut table = self.table.lock().unwrap();
        match table.pumps.get_mut(&id) {
            Some(pump) if token & TARGET == 0 => {
                pump.started = true;
                // The writers are gone: read on to the end, whatever a splice returns.
                pump.hung_up |= events & HANGUP != 0;
            }
            Some(pump) if !pump.started => return false,
            _ => {}
        }
        self.run(&mut table, id)
    }

    /// Passes on what the source holds now, then ends the copy: how an input copy is
    /// closed when the manager asks (CloseIO) or the process is gone.
    pub fn finish(&self, id: u64) {
        let mut table = self.table.lock().unwrap();
        if let Some(pump) = table.pumps.get_mut(&id) {
            // An input nobody ever wrote to reads as ended, which is what is wanted.
            let _ = pump.step();
        }
        self.end(&mut table, id);
    }

    /// Copies still running, for tests and leak checks.
    pub fn running(&self) -> usize {
        self.table.lock().unwrap().pumps.len()
    }

    fn run(&self, table: &mut Table, id: u64) -> bool {
        let Some(pump) = table.pumps.get_mut(&id) else {
            // A late event for a pump that has ended.
            return false;
        };
        let token = TOKEN | id;
        match pump.step() {
            Step::Ended => {
                self.end(table, id);
                return true;
            }
            Step::Blocked => {
                if !pump.blocked {
                    if let (Some(target), true) = (&pump.target, pump.target_polled) {
                        // Swap what is watched: room in the target, not data in the
                        // source. Arming reports the target at once if it has room.
                        let _ = self.poller.modify(pump.source.as_raw_fd(), EDGE, token);
                        let _ =
                            self.poller
                                .modify(target.as_raw_fd(), WRITABLE | EDGE, token | TARGET);
                        pump.blocked = true;
                    }
                }
            }
            Step::Idle => {
                if pump.blocked {
                    if let Some(target) = &pump.target {
                        let _ = self.poller.modify(target.as_raw_fd(), EDGE, token | TARGET);
                    }
                    // Re-watching reports the source at once if it already holds data.
                    let _ = self
                        .poller
                        .modify(pump.source.as_raw_fd(), READABLE | EDGE, token);
                    pump.blocked = false;
                }
            }
        }
        false
    }

    fn end(&self, table: &mut Table, id: u64) {
        let Some(pump) = table.pumps.remove(&id) else {
            return;
        };
        // Deregister before closing: a dup of a pty master would keep the
        // registration alive after the close.
        self.poller.remove(pump.source.as_raw_fd());
        if let (Some(target), true) = (&pump.target, pump.target_polled) {
            self.poller.remove(target.as_raw_fd());
        }
        if let Some(outputs) = &pump.outputs {
            outputs.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Pump {
    fn step(&mut self) -> Step {
        loop {
            let step = match (self.target.as_ref(), self.transfer) {
                (None, _) => return self.discard(),
                (Some(_), Transfer::Splice) => self.splice(),
                (Some(_), Transfer::Buffered) => self.buffered(),
            };
            match step {
                Ok(step) => return step,
                // The target failed: an input copy ends (the process will not read
                // more); an output copy keeps draining its source.
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
        let (source, target) = (self.source.as_raw_fd(), self.target_fd());
        loop {
            // SAFETY: splice between two open fds, no offsets.
            let n = unsafe {
                libc::splice(
                    source,
                    std::ptr::null_mut(),
                    target,
                    std::ptr::null_mut(),
                    SPLICE_CHUNK,
                    libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
                )
            };
            if n > 0 {
                // Less than asked: the source is empty, or the target full. (After a
                // hang-up, ask again: the end is only seen as a splice of 0.)
                if (n as usize) < SPLICE_CHUNK && !self.hung_up {
                    return Ok(self.empty_or_blocked());
                }
                continue;
            }
            if n == 0 {
                return Ok(Step::Ended);
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                // Either side would block: the source is empty, or the target full.
                Some(libc::EAGAIN) => return Ok(self.empty_or_blocked()),
                Some(libc::EINVAL) => {
                    self.transfer = Transfer::Buffered;
                    return self.buffered();
                }
                _ => return Err(err),
            }
        }
    }

    /// After a splice that stopped short: data left in the source means the target is
    /// full. So does EAGAIN from a source whose writers are gone: at its end, splice
    /// still asks the target for room before it can return 0.
    fn empty_or_blocked(&self) -> Step {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD into a local int.
        let rc = unsafe { libc::ioctl(self.source.as_raw_fd(), libc::FIONREAD, &mut n) };
        if self.hung_up || (rc == 0 && n > 0) {
            Step::Blocked
        } else {
            Step::Idle
        }
    }

    fn buffered(&mut self) -> io::Result<Step> {
        let target = self.target_fd();
        if self.buf.is_empty() {
            self.buf = vec![0; BUFFER];
        }
        loop {
            if !self.pending.is_empty() {
                let chunk = &self.buf[self.pending.clone()];
                // SAFETY: writes from our buffer to an open fd.
                let n = unsafe { libc::write(target, chunk.as_ptr().cast(), chunk.len()) };
                if n >= 0 {
                    self.pending.start += n as usize;
                    continue;
                }
                let err = io::Error::last_os_error();
                match err.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::EAGAIN) => return Ok(Step::Blocked),
                    _ => return Err(err),
                }
            }
            match read(self.source.as_raw_fd(), &mut self.buf) {
                Ok(0) => return Ok(Step::Ended),
                Ok(n) => self.pending = 0..n,
                Err(step) => return Ok(step),
            }
        }
    }

    fn discard(&mut self) -> Step {
        let mut scratch = [0u8; 8192];
        loop {
            match read(self.source.as_raw_fd(), &mut scratch) {
                Ok(0) => return Step::Ended,
                Ok(_) => continue,
                Err(step) => return step,
            }
        }
    }

    fn target_fd(&self) -> RawFd {
        self.target.as_ref().map_or(-1, |t| t.as_raw_fd())
    }
}

/// Reads what is there: Ok(0) at the end, Err(Idle) when empty for now.
fn read(fd: RawFd, buf: &mut [u8]) -> Result<usize, Step> {
    loop {
        // SAFETY: reads into the caller's buffer from an open fd.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        match io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) => return Err(Step::Idle),
            // A pty master whose every slave closed reports EIO.
            Some(libc::EIO) => return Ok(0),
            Some(e) => {
                log::warn!(
                    "reading container stdio: {}",
                    io::Error::from_raw_os_error(e)
                );
                return Ok(0);
            }
            None => return Ok(0),
        }
    }
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: reading and setting file status flags of an open fd.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::time::Duration;

    fn pipe() -> (std::fs::File, std::fs::File) {
        let (r, w) = std::io::pipe().unwrap();
        (OwnedFd::from(r).into(), OwnedFd::from(w).into())
    }

    /// Runs the loop until `done` or a second has passed.
    fn spin(poller: &Poller, pumps: &Pumps, mut done: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 8];
        while !done() && std::time::Instant::now() < deadline {
            let n = poller.wait(&mut events, Duration::from_millis(20));
            for ev in &events[..n] {
                pumps.ready(ev.u64, ev.events);
            }
        }
    }

    #[test]
    fn output_more_than_a_pipe_holds_reaches_the_target_then_ends() {
        let poller = Arc::new(Poller::new().unwrap());
        let pumps = Pumps::new(poller.clone());
        let (src_r, mut src_w) = pipe();
        let (dst_r, dst_w) = pipe();
        let outputs = Arc::new(AtomicUsize::new(0));
        pumps
            .add(Copy {
                source: src_r.into(),
                target: dst_w.into(),
                transfer: Transfer::Splice,
                outputs: Some(outputs.clone()),
                input: false,
            })
            .unwrap();
        assert_eq!(outputs.load(Ordering::SeqCst), 1);
        // 1 MiB: the writer and the reader each block on full pipes many times.
        let writer = std::thread::spawn(move || {
            src_w.write_all(&vec![7u8; 1 << 20]).unwrap();
        });
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            let mut dst_r = dst_r;
            dst_r.read_to_end(&mut all).unwrap();
            all
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while pumps.running() > 0 && std::time::Instant::now() < deadline {
            spin(&poller, &pumps, || pumps.running() == 0);
        }
        writer.join().unwrap();
        assert_eq!(pumps.running(), 0, "the pump ends when the writer closes");
        assert_eq!(outputs.load(Ordering::SeqCst), 0);
        let all = reader.join().unwrap();
        assert_eq!(all.len(), 1 << 20);
        assert!(all.iter().all(|b| *b == 7));
    }

    #[test]
    fn a_broken_target_is_drained_so_the_writer_never_blocks() {
        let poller = Arc::new(Poller::new().unwrap());
        let pumps = Pumps::new(poller.clone());
        let (src_r, mut src_w) = pipe();
        let (dst_r, dst_w) = pipe();
        drop(dst_r);
        pumps
            .add(Copy {
                source: src_r.into(),
                target: dst_w.into(),
                transfer: Transfer::Buffered,
                outputs: None,
                input: false,
            })
            .unwrap();
        let writer = std::thread::spawn(move || src_w.write_all(&vec![1u8; 256 * 1024]).is_ok());
        spin(&poller, &pumps, || {
            writer.is_finished() && pumps.running() == 0
        });
        assert!(writer.join().unwrap(), "every byte was taken off the pipe");
        assert_eq!(pumps.running(), 0);
    }
}
