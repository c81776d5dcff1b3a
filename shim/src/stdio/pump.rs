//! Pumps: the copies between a container's stdio and the manager's, run by the shim's
//! one event loop instead of a thread per stream. Every fd is non-blocking and
//! registered edge-triggered; a pump moves bytes until its source is empty (it waits
//! for the next edge), its target is full (it waits for the target to drain), its budget
//! is spent (it runs again before the loop sleeps, after the others), or its source ends
//! (it closes the target, which is how the manager learns the stream ended).
//!
//! While a target is full, its source is not watched: the container's small writes then
//! collect in the pipe instead of each waking the loop for a copy that cannot be made,
//! and the copy resumes in one go when the target has room. No edge is ever waited for
//! that may not come: a step says the target is full only when the kernel says so (see
//! [`super::transfer`]), an end that is watched again is looked at again (re-arming an
//! edge-triggered registration reports what is already there), and an end that stays
//! watched was watched when the step looked at it, so whatever changes after is an edge.
//!
//! An input copy's FIFO is held open for writing by the shim itself (its keeper), so a
//! manager's writer that goes away (a restart, a client that reattaches) is no end of
//! input: the input ends when the manager says so (CloseIO drops the keeper; the copy
//! passes on what is left and ends when the last writer has gone), or when the process
//! is gone.
//!
//! A FIFO target the manager has not opened yet still holds what was copied into it (the
//! shim opens FIFOs read-write, so its own end keeps the data): when the source ends
//! with bytes unread there, the FIFO is kept open until they are read, or for
//! [`LINGER`], so that a manager whose reader is slow to open still gets the output.

use super::transfer::{unread, Ends, Step, Transfer};
use crate::sys::poller::{Poller, EDGE, READABLE, WRITABLE};
use crate::sys::token::Token;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const HANGUP: u32 = (libc::EPOLLHUP | libc::EPOLLERR) as u32;
/// How long output nobody has read yet is kept in a FIFO after its source ended.
pub const LINGER: Duration = Duration::from_secs(30);
/// How often lingering FIFOs are looked at.
const LINGER_CHECK: Duration = Duration::from_millis(50);

/// One copy to run.
pub struct Copy {
    pub source: OwnedFd,
    pub target: OwnedFd,
    pub transfer: Transfer,
    /// Counts the running output copies of a process; decremented when this one ends.
    pub outputs: Option<Arc<AtomicUsize>>,
    /// An input copy: it ends when its target fails, and its FIFO never lingers.
    pub input: bool,
    /// The shim's own writer of an input FIFO, held until the input is closed.
    pub keeper: Option<OwnedFd>,
}

struct Pump {
    ends: Ends,
    target_polled: bool,
    /// The target is a FIFO: what is unread in it at the end is kept for its reader.
    target_fifo: bool,
    /// The target was full: the source is unwatched, the target watched.
    blocked: bool,
    outputs: Option<Arc<AtomicUsize>>,
    keeper: Option<OwnedFd>,
}

/// A FIFO kept open after its copy ended, until its reader has taken what is in it.
struct Linger {
    fifo: OwnedFd,
    until: Instant,
}

pub struct Pumps {
    poller: Arc<Poller>,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    next: u64,
    pumps: HashMap<u64, Pump>,
    /// Pumps that spent their budget with more to move.
    again: VecDeque<u64>,
    lingering: Vec<Linger>,
    /// Ends of helpers (file writers) whose hang-up means an output has drained.
    helpers: HashMap<u64, OwnedFd>,
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
        set_nonblocking(&copy.source)?;
        set_nonblocking(&copy.target)?;
        let mut table = self.table.lock().unwrap();
        table.next += 1;
        let id = table.next;
        self.poller
            .add(&copy.source, READABLE | EDGE, Token::PumpSource(id))?;
        // Regular files cannot be polled (EPERM) and never fill up.
        let target_polled =
            match self
                .poller
                .add(&copy.target, WRITABLE | EDGE, Token::PumpTarget(id))
            {
                Ok(()) => true,
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => false,
                Err(e) => {
                    self.poller.remove(&copy.source);
                    return Err(e);
                }
            };
        if let Some(outputs) = &copy.outputs {
            outputs.fetch_add(1, Ordering::SeqCst);
        }
        let pump = Pump {
            target_fifo: !copy.input && is_fifo(&copy.target),
            ends: Ends::new(copy.source, copy.target, copy.transfer, copy.input),
            target_polled,
            blocked: false,
            outputs: copy.outputs,
            keeper: copy.keeper,
        };
        table.pumps.insert(id, pump);
        self.run(&mut table, id);
        Ok(id)
    }

    /// The loop reports readiness for a pump's `token`. True when a copy or a helper
    /// ended: an exit may have been waiting for it.
    pub fn ready(&self, token: Token, events: u32) -> bool {
        let mut table = self.table.lock().unwrap();
        let id = match token {
            Token::PumpHelper(id) => {
                return match table.helpers.remove(&id) {
                    Some(end) => {
                        self.poller.remove(&end);
                        true
                    }
                    None => false,
                };
            }
            Token::PumpTarget(id) if events & HANGUP != 0 => {
                if self.target_gone(&mut table, id) {
                    return true;
                }
                id
            }
            Token::PumpSource(id) | Token::PumpTarget(id) => id,
            // Not a pump's: nothing to do here.
            _ => return false,
        };
        self.run(&mut table, id)
    }

    /// The target reports a hang-up or an error: nobody reads it any more (a pipe
    /// without readers, a pty whose slave every process closed). A write would fail, so
    /// an input ends, and an output drains its source from now on. The registration goes
    /// too: a hung-up pty reports its hang-up again at every wait, edge-triggered or not.
    /// True when the copy ended.
    fn target_gone(&self, table: &mut Table, id: u64) -> bool {
        let Some(pump) = table.pumps.get_mut(&id) else {
            return false;
        };
        if pump.ends.input {
            self.end(table, id);
            return true;
        }
        if let Some(target) = pump.ends.target.take() {
            if pump.target_polled {
                self.poller.remove(&target);
            }
        }
        pump.target_polled = false;
        pump.target_fifo = false;
        if pump.blocked {
            let _ = self
                .poller
                .modify(&pump.ends.source, READABLE | EDGE, Token::PumpSource(id));
            pump.blocked = false;
        }
        false
    }

    /// Watches `end`, the read end of a pipe whose write end a helper thread holds until
    /// it has finished an output: its hang-up wakes the loop to look at exits again.
    pub fn watch_end(&self, end: OwnedFd) -> io::Result<()> {
        let mut table = self.table.lock().unwrap();
        table.next += 1;
        let id = table.next;
        self.poller.add(&end, READABLE, Token::PumpHelper(id))?;
        table.helpers.insert(id, end);
        Ok(())
    }

    /// Runs once each pump that spent its budget, and closes lingering FIFOs that were
    /// read or waited long enough. True when a copy ended.
    pub fn run_pending(&self) -> bool {
        let mut table = self.table.lock().unwrap();
        let now = Instant::now();
        table
            .lingering
            .retain(|l| now < l.until && unread(&l.fifo) > 0);
        let again: Vec<u64> = table.again.drain(..).collect();
        let mut ended = false;
        for id in again {
            ended |= self.run(&mut table, id);
        }
        ended
    }

    /// When the loop must look again without an event: at once for pumps with more to
    /// move, soon for lingering FIFOs.
    pub fn next_run(&self) -> Option<Duration> {
        let table = self.table.lock().unwrap();
        if !table.again.is_empty() {
            Some(Duration::ZERO)
        } else if !table.lingering.is_empty() {
            Some(LINGER_CHECK)
        } else {
            None
        }
    }

    /// Closes an input as the manager asks (CloseIO): the shim lets go of its own writer,
    /// and the copy ends once what the manager's writers put in has been passed on and
    /// the last of them has closed the FIFO.
    pub fn close_input(&self, id: u64) {
        let mut table = self.table.lock().unwrap();
        let Some(pump) = table.pumps.get_mut(&id) else {
            return;
        };
        if pump.keeper.take().is_some() && !table.again.contains(&id) {
            // The hang-up is an edge too, but look now rather than count on it.
            table.again.push_back(id);
        }
    }

    /// Passes on what the source holds now, as far as the target takes it, then ends
    /// the copy: how an input is ended when its process is gone.
    pub fn finish(&self, id: u64) {
        let mut table = self.table.lock().unwrap();
        if let Some(pump) = table.pumps.get_mut(&id) {
            let _ = pump.ends.step();
        }
        self.end(&mut table, id);
    }

    /// Copies still running, for tests and leak checks.
    pub fn running(&self) -> usize {
        self.table.lock().unwrap().pumps.len()
    }

    /// Whether copy `id` still runs.
    pub fn is_running(&self, id: u64) -> bool {
        self.table.lock().unwrap().pumps.contains_key(&id)
    }

    /// Runs one step of pump `id` and watches what it must wait for; true when it ended.
    fn run(&self, table: &mut Table, id: u64) -> bool {
        let Some(pump) = table.pumps.get_mut(&id) else {
            // A late event for a pump that has ended.
            return false;
        };
        match pump.ends.step() {
            Step::Ended => {
                self.end(table, id);
                return true;
            }
            Step::Again => {
                if !table.again.contains(&id) {
                    table.again.push_back(id);
                }
            }
            Step::Blocked => self.watch_target(pump, id),
            Step::Idle => self.watch_source(pump, id),
        }
        false
    }

    /// The target is full: watch it for room, and the source no more. A target already
    /// watched stays so: it was watched when the step found it full.
    fn watch_target(&self, pump: &mut Pump, id: u64) {
        if pump.blocked || !pump.target_polled {
            return;
        }
        let Some(target) = &pump.ends.target else {
            return;
        };
        // Arming reports the target at once if it has room by now.
        let _ = self
            .poller
            .modify(&pump.ends.source, EDGE, Token::PumpSource(id));
        let _ = self
            .poller
            .modify(target, WRITABLE | EDGE, Token::PumpTarget(id));
        pump.blocked = true;
    }

    /// The source is empty and the target has room: watch the source again.
    fn watch_source(&self, pump: &mut Pump, id: u64) {
        if !pump.blocked {
            return;
        }
        if let Some(target) = &pump.ends.target {
            let _ = self.poller.modify(target, EDGE, Token::PumpTarget(id));
        }
        // Re-watching reports the source at once if it already holds data.
        let _ = self
            .poller
            .modify(&pump.ends.source, READABLE | EDGE, Token::PumpSource(id));
        pump.blocked = false;
    }

    fn end(&self, table: &mut Table, id: u64) {
        let Some(mut pump) = table.pumps.remove(&id) else {
            return;
        };
        table.again.retain(|a| *a != id);
        // Deregister before closing: a dup of a pty master would keep the
        // registration alive after the close.
        self.poller.remove(&pump.ends.source);
        if let (Some(target), true) = (&pump.ends.target, pump.target_polled) {
            self.poller.remove(target);
        }
        if let Some(outputs) = &pump.outputs {
            outputs.fetch_sub(1, Ordering::SeqCst);
        }
        if let Some(target) = pump.ends.target.take().filter(|_| pump.target_fifo) {
            if unread(&target) > 0 {
                table.lingering.push(Linger {
                    fifo: target,
                    until: Instant::now() + LINGER,
                });
            }
        }
    }
}

fn is_fifo(fd: &OwnedFd) -> bool {
    nix::sys::stat::fstat(fd)
        .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFIFO)
        .unwrap_or(false)
}

fn set_nonblocking(fd: impl std::os::fd::AsFd) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_retain(fcntl(&fd, FcntlArg::F_GETFL)?);
    fcntl(&fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::time::Duration;

    /// A plain copy from one pipe to another.
    fn buffered(source: std::fs::File, target: std::fs::File) -> Copy {
        Copy {
            source: source.into(),
            target: target.into(),
            transfer: Transfer::Buffered,
            outputs: None,
            input: false,
            keeper: None,
        }
    }

    fn pipe() -> (std::fs::File, std::fs::File) {
        let (r, w) = std::io::pipe().unwrap();
        (OwnedFd::from(r).into(), OwnedFd::from(w).into())
    }

    /// Runs the loop until `done` or a second has passed.
    fn spin(poller: &Poller, pumps: &Pumps, mut done: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        let mut events = crate::sys::poller::events::<8>();
        while !done() && std::time::Instant::now() < deadline {
            let n = poller.wait(&mut events, Duration::from_millis(20));
            for ev in &events[..n] {
                if let (ready, Some(token)) = crate::sys::poller::parts(ev) {
                    pumps.ready(token, ready);
                }
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
                keeper: None,
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
        pumps.add(buffered(src_r, dst_w)).unwrap();
        let writer = std::thread::spawn(move || src_w.write_all(&vec![1u8; 256 * 1024]).is_ok());
        spin(&poller, &pumps, || {
            writer.is_finished() && pumps.running() == 0
        });
        assert!(writer.join().unwrap(), "every byte was taken off the pipe");
        assert_eq!(pumps.running(), 0);
    }

    #[test]
    fn output_left_in_a_fifo_nobody_opened_yet_waits_for_its_reader() {
        let poller = Arc::new(Poller::new().unwrap());
        let pumps = Pumps::new(poller.clone());
        let dir = std::env::temp_dir().join(format!("skiff-linger-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("stdout");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let fifo = crate::stdio::fifo_output_for_tests(&path);
        let (src_r, mut src_w) = pipe();
        pumps
            .add(Copy {
                source: src_r.into(),
                target: fifo,
                transfer: Transfer::Splice,
                outputs: None,
                input: false,
                keeper: None,
            })
            .unwrap();
        // The process writes and ends before the manager has opened its reader.
        src_w.write_all(b"early words").unwrap();
        drop(src_w);
        spin(&poller, &pumps, || pumps.running() == 0);
        assert_eq!(pumps.running(), 0);
        assert!(pumps.next_run().is_some(), "the FIFO lingers");
        let fifo_path = path.clone();
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            std::fs::File::open(&fifo_path)
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            text
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !reader.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            pumps.run_pending();
        }
        if !reader.is_finished() {
            // No writer is left to wake the reader's open: be that writer.
            let _ = std::fs::OpenOptions::new().write(true).open(&path);
        }
        assert_eq!(reader.join().unwrap(), "early words");
        assert!(pumps.next_run().is_none(), "the FIFO is closed once read");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Sets a pipe's capacity (1 MiB is the most an unprivileged pipe may hold).
    fn grow(fd: &std::fs::File) {
        nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20)).unwrap();
    }

    #[test]
    fn a_source_that_never_empties_yields_after_its_budget() {
        let poller = Arc::new(Poller::new().unwrap());
        let pumps = Pumps::new(poller.clone());
        let (src_r, mut src_w) = pipe();
        let (mut dst_r, dst_w) = pipe();
        grow(&src_w);
        grow(&dst_w);
        src_w.write_all(&vec![5u8; 1 << 20]).unwrap();
        pumps.add(buffered(src_r, dst_w)).unwrap();
        // add() ran one step: at most the budget (and one buffer) crossed.
        let mut moved = vec![0u8; 2 << 20];
        set_nonblocking(&dst_r).unwrap();
        let n = dst_r.read(&mut moved).unwrap_or(0);
        assert!(
            n > 0 && n <= super::super::transfer::BUDGET + 32 * 1024,
            "one step moved {n}"
        );
        assert_eq!(
            pumps.next_run(),
            Some(Duration::ZERO),
            "it asks to run again"
        );
        pumps.run_pending();
        let more = dst_r.read(&mut moved).unwrap_or(0);
        assert!(more > 0, "the next round moved on");
    }
}
