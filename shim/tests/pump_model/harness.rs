//! The pumps against a model of what must come out of them. A case sets up one to three
//! copies of every kind the shim runs (a container's pipe or pty to a pipe, a FIFO or a
//! regular file; a stdin FIFO to a pipe or a pty), each with real kernel objects of
//! random sizes, then interleaves random actions: writers that write, close and come
//! back, readers that are fast, slow, away or gone, CloseIO, the process going away,
//! and turns of an event loop built as the shim's is. The model checks:
//!
//! - every byte that arrives is the next one written (none lost, doubled or reordered),
//!   save where the model says bytes may be dropped (a target that broke, an input whose
//!   process went away);
//! - the loop always goes quiet (no busy loop), and once it is quiet no running copy has
//!   data in its source and room in its target (no stall);
//! - after everything has settled, every byte written has arrived, and a stream has ended
//!   (its reader sees the end, its output no longer counts as running) exactly when the
//!   model says: an output when the container closed it, an input only after CloseIO
//!   and the last writer's close, never because a writer went away.
//!
//! Choices come from a [`Choices`]: a seeded generator for the test, the fuzzer's bytes
//! for the fuzz target (which includes this file).

// The test uses the seeded choices, the fuzz target the fuzzer's bytes.
#![allow(dead_code)]

use skiff_shim::stdio::fifo;
use skiff_shim::stdio::file_sink;
use skiff_shim::stdio::pump::{Copy, Pumps};
use skiff_shim::stdio::Transfer;
use skiff_shim::sys::poller::{self, Poller};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where a case's random choices come from.
pub trait Choices {
    /// A number below `n` (n > 0).
    fn below(&mut self, n: u32) -> u32;
    /// No choices are left: the case winds up.
    fn exhausted(&self) -> bool {
        false
    }
}

/// splitmix64: small, and the same everywhere.
pub struct Seeded(pub u64);

impl Choices for Seeded {
    fn below(&mut self, n: u32) -> u32 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z % n as u64) as u32
    }
}

/// A fuzzer's bytes as choices; zeros once they run out.
pub struct FromBytes<'a> {
    pub data: &'a [u8],
    pub at: usize,
}

impl Choices for FromBytes<'_> {
    fn below(&mut self, n: u32) -> u32 {
        let mut v = 0u32;
        for _ in 0..2 {
            let b = self.data.get(self.at).copied().unwrap_or(0);
            self.at += 1;
            v = (v << 8) | b as u32;
        }
        v % n
    }
    fn exhausted(&self) -> bool {
        self.at >= self.data.len()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A container's pipe to a pipe.
    OutPipe,
    /// A container's pipe to a manager's FIFO (opened as the shim opens one).
    OutFifo,
    /// A terminal's pty master to a pipe.
    OutPty,
    /// A container's pipe to a `file://` log (through its writer thread).
    OutFile,
    /// A stdin FIFO to the container's pipe.
    InPipe,
    /// A stdin FIFO to a terminal's pty master.
    InPty,
}

const KINDS: [Kind; 6] = [
    Kind::OutPipe,
    Kind::OutFifo,
    Kind::OutPty,
    Kind::OutFile,
    Kind::InPipe,
    Kind::InPty,
];

impl Kind {
    fn input(self) -> bool {
        matches!(self, Kind::InPipe | Kind::InPty)
    }
}

/// One copy and the model of it.
struct Stream {
    no: usize,
    kind: Kind,
    id: u64,
    /// The pump's own fds, valid while it runs (looked at, never closed, here).
    source_fd: RawFd,
    target_fd: RawFd,
    /// The FIFO of an input or of a FIFO output.
    fifo: Option<PathBuf>,
    /// An output's file.
    file: Option<PathBuf>,
    /// A pty's master as the shim holds it (the console), beside the copy's dup of it.
    console: Option<OwnedFd>,
    /// The manager's writers of an input; the container's one end of an output.
    writers: Vec<File>,
    /// The end the bytes come out of: a pipe's, a pty slave, a FIFO's, a file.
    reader: Option<File>,
    written: u64,
    delivered: u64,
    /// The reader saw the end.
    eof: bool,
    /// Bytes may be dropped from here on: the target broke, or the process went away.
    lossy: bool,
    /// An output's writer closed for good (the container's end of the stream).
    closed: bool,
    /// CloseIO was sent.
    close_io: bool,
    /// The process went away (the copy was ended at once).
    finished: bool,
    outputs: Arc<AtomicUsize>,
}

/// A failed case: what went wrong and what led there.
pub struct Failure {
    pub message: String,
    pub log: Vec<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}", self.message)?;
        let setup = self
            .log
            .iter()
            .take_while(|l| l.contains(" source "))
            .count();
        for line in &self.log[..setup] {
            writeln!(f, "  {line}")?;
        }
        writeln!(f, "actions (last 60 of {}):", self.log.len() - setup)?;
        let from = self.log.len().saturating_sub(60).max(setup);
        for line in &self.log[from..] {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

type Outcome = Result<(), String>;

struct World {
    poller: Arc<Poller>,
    pumps: Pumps,
    streams: Vec<Stream>,
    dir: PathBuf,
    log: Vec<String>,
}

/// The bytes streams carry: a random table whose length is a prime, so that no loss
/// or doubling shorter than it goes unseen.
const PERIOD: usize = 524_287;

fn table() -> &'static [u8] {
    static TABLE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut rng = Seeded(0x5eed);
        // Twice the period, so that any run of up to a period is one slice.
        let half: Vec<u8> = (0..PERIOD).map(|_| rng.below(256) as u8).collect();
        [half.clone(), half].concat()
    })
}

/// Bytes `at..at + n` of stream `no` (n at most a period).
fn pattern(no: usize, at: u64, n: usize) -> &'static [u8] {
    let start = ((at + no as u64 * 7919) % PERIOD as u64) as usize;
    &table()[start..start + n]
}

/// Runs one case to its end.
pub fn run_case(choices: &mut dyn Choices, case: u64) -> Result<(), Failure> {
    let mut world = match World::new(case) {
        Ok(w) => w,
        Err(e) => {
            return Err(Failure {
                message: format!("setting up: {e}"),
                log: Vec::new(),
            })
        }
    };
    let outcome = world.play(choices);
    let log = std::mem::take(&mut world.log);
    drop(world);
    outcome.map_err(|message| Failure { message, log })
}

impl World {
    fn new(case: u64) -> std::io::Result<World> {
        let poller = Arc::new(Poller::new()?);
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "skiff-pump-model-{}-{case}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        Ok(World {
            pumps: Pumps::new(poller.clone()),
            poller,
            streams: Vec::new(),
            dir,
            log: Vec::new(),
        })
    }

    fn play(&mut self, c: &mut dyn Choices) -> Outcome {
        let count = 1 + c.below(3) as usize;
        for no in 0..count {
            let kind = KINDS[c.below(KINDS.len() as u32) as usize];
            self.add(no, kind, c)?;
        }
        let actions = 10 + c.below(120);
        for _ in 0..actions {
            if c.exhausted() {
                break;
            }
            self.act(c)?;
        }
        self.wind_up(c)
    }

    fn note(&mut self, line: String) {
        self.log.push(line);
    }

    // Setting up.

    fn add(&mut self, no: usize, kind: Kind, c: &mut dyn Choices) -> Outcome {
        let sizes = [4096, 65536, 1 << 20];
        let source_size = sizes[c.below(3) as usize];
        let target_size = sizes[c.below(3) as usize];
        let transfer = if c.below(4) == 0 {
            Transfer::Buffered
        } else {
            Transfer::Splice
        };
        let outputs = Arc::new(AtomicUsize::new(0));
        let mut s = Stream {
            no,
            kind,
            id: 0,
            source_fd: -1,
            target_fd: -1,
            fifo: None,
            file: None,
            console: None,
            writers: Vec::new(),
            reader: None,
            written: 0,
            delivered: 0,
            eof: false,
            lossy: false,
            closed: false,
            close_io: false,
            finished: false,
            outputs: outputs.clone(),
        };
        let (source, target, transfer, keeper) = match kind {
            Kind::OutPipe | Kind::OutFifo | Kind::OutFile => {
                let (r, w) = pipe(source_size)?;
                s.writers.push(w.into());
                let target = match kind {
                    Kind::OutPipe => {
                        let (tr, tw) = pipe(target_size)?;
                        s.reader = Some(tr.into());
                        tw
                    }
                    Kind::OutFifo => {
                        let path = self.dir.join(format!("out{no}"));
                        mkfifo(&path)?;
                        let fd =
                            fifo::open_output(&path).map_err(|e| format!("open_output: {e}"))?;
                        set_pipe_size(&fd, target_size);
                        s.reader = Some(open_fifo_reader(&path)?);
                        s.fifo = Some(path);
                        fd
                    }
                    _ => {
                        let path = self.dir.join(format!("log{no}"));
                        let file = fifo::open_log_file(&path)
                            .map_err(|e| format!("open_log_file: {e}"))?;
                        let into = file_sink::start(file, "model", &outputs, &self.pumps)
                            .map_err(|e| format!("file_sink: {e}"))?;
                        s.reader = Some(File::open(&path).map_err(|e| e.to_string())?);
                        s.file = Some(path);
                        into
                    }
                };
                (r, target, transfer, None)
            }
            Kind::OutPty => {
                let (master, slave) = raw_pty()?;
                s.writers.push(slave);
                let (tr, tw) = pipe(target_size)?;
                s.reader = Some(tr.into());
                let copy = master.try_clone().map_err(|e| e.to_string())?;
                s.console = Some(master);
                (copy, tw, Transfer::Buffered, None)
            }
            Kind::InPipe | Kind::InPty => {
                let path = self.dir.join(format!("in{no}"));
                mkfifo(&path)?;
                let input = fifo::open_input(&path).map_err(|e| format!("open_input: {e}"))?;
                set_pipe_size(&input.reader, source_size);
                s.fifo = Some(path);
                let (target, transfer) = if kind == Kind::InPipe {
                    let (tr, tw) = pipe(target_size)?;
                    s.reader = Some(tr.into());
                    (tw, transfer)
                } else {
                    let (master, slave) = raw_pty()?;
                    s.reader = Some(slave);
                    let copy = master.try_clone().map_err(|e| e.to_string())?;
                    s.console = Some(master);
                    (copy, Transfer::Buffered)
                };
                if c.below(3) != 0 {
                    let w = open_fifo_writer(s.fifo.as_ref().unwrap())?;
                    s.writers.push(w);
                }
                (input.reader, target, transfer, Some(input.keeper))
            }
        };
        s.source_fd = source.as_raw_fd();
        s.target_fd = target.as_raw_fd();
        s.id = self
            .pumps
            .add(Copy {
                source,
                target,
                transfer,
                outputs: (!kind.input()).then(|| outputs.clone()),
                input: kind.input(),
                keeper,
            })
            .map_err(|e| format!("adding the pump: {e}"))?;
        self.note(format!(
            "stream {no}: {kind:?} {transfer:?} source {source_size} target {target_size}"
        ));
        self.streams.push(s);
        Ok(())
    }

    // Acting.

    fn act(&mut self, c: &mut dyn Choices) -> Outcome {
        let i = c.below(self.streams.len() as u32) as usize;
        match c.below(20) {
            0..=5 => {
                let n = write_size(c);
                self.write(i, n)
            }
            6..=9 => {
                let n = [1, 100, 4096, 1 << 20][c.below(4) as usize];
                self.read(i, n)
            }
            10..=13 => {
                let n = self.turn(Duration::ZERO);
                self.note(format!("turn: {n} events"));
                Ok(())
            }
            14 => self.settle_quietly(),
            15 => self.writer_goes(i),
            16 => self.writer_comes(i),
            17 => self.reader_goes(i),
            18 => self.close_io(i),
            _ => {
                if c.below(8) == 0 {
                    self.process_gone(i)
                } else {
                    self.read(i, 1 << 20)
                }
            }
        }
    }

    fn write(&mut self, i: usize, n: usize) -> Outcome {
        let s = &mut self.streams[i];
        let Some(w) = s.writers.last_mut() else {
            return Ok(());
        };
        let n = n.min(PERIOD);
        let took = match w.write(pattern(s.no, s.written, n)) {
            Ok(k) => k,
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => 0,
            // The reader is gone: the copy ended (a broken target, a finished input).
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => 0,
            Err(e) if e.raw_os_error() == Some(libc::EIO) => 0,
            Err(e) => return Err(format!("stream {i}: writing: {e}")),
        };
        s.written += took as u64;
        let line = format!("stream {i}: wrote {took} of {n} (total {})", s.written);
        self.note(line);
        Ok(())
    }

    /// Reads at most `n` bytes and checks each against the model.
    fn read(&mut self, i: usize, n: usize) -> Outcome {
        let s = &mut self.streams[i];
        if s.kind == Kind::OutFifo && s.reader.is_none() && !s.lossy {
            s.reader = Some(open_fifo_reader(s.fifo.as_ref().unwrap())?);
        }
        let Some(r) = s.reader.as_mut() else {
            return Ok(());
        };
        let mut buf = vec![0u8; n];
        let got = match r.read(&mut buf) {
            Ok(0) => {
                // A file has no end: its writer thread's end is looked at elsewhere.
                if s.kind != Kind::OutFile {
                    s.eof = true;
                }
                0
            }
            Ok(k) => k,
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => 0,
            // A pty slave whose master is closed.
            Err(e) if e.raw_os_error() == Some(libc::EIO) => {
                s.eof = true;
                0
            }
            Err(e) => return Err(format!("stream {i}: reading: {e}")),
        };
        if got > 0 && s.eof {
            return Err(format!("stream {i}: {got} bytes came after the end"));
        }
        if s.delivered + got as u64 > s.written {
            return Err(format!(
                "stream {i}: {} bytes arrived, but only {} were written",
                s.delivered + got as u64,
                s.written
            ));
        }
        for (k, chunk) in buf[..got].chunks(PERIOD).enumerate() {
            let at = s.delivered + (k * PERIOD) as u64;
            if chunk != pattern(s.no, at, chunk.len()) {
                return Err(format!(
                    "stream {i}: bytes from {at} are not the ones written there: \
                     a byte was lost, doubled or moved"
                ));
            }
        }
        s.delivered += got as u64;
        let line = format!(
            "stream {i}: read {got} (total {}{})",
            s.delivered,
            if s.eof { ", end" } else { "" }
        );
        self.note(line);
        Ok(())
    }

    fn writer_goes(&mut self, i: usize) -> Outcome {
        let s = &mut self.streams[i];
        if s.writers.pop().is_none() {
            return Ok(());
        }
        if !s.kind.input() {
            s.closed = true;
        }
        self.note(format!("stream {i}: a writer closed"));
        Ok(())
    }

    fn writer_comes(&mut self, i: usize) -> Outcome {
        let s = &mut self.streams[i];
        if !s.kind.input() || s.writers.len() >= 2 {
            return Ok(());
        }
        let path = s.fifo.clone().unwrap();
        match open_fifo_writer(&path) {
            Ok(w) => {
                s.writers.push(w);
                self.note(format!("stream {i}: a writer opened"));
            }
            // No reader: the copy has ended (and must have been allowed to).
            Err(e) if e.contains("No such device") => {
                let running = self.pumps.is_running(s.id);
                if running {
                    return Err(format!(
                        "stream {i}: its FIFO has no reader, yet its copy runs"
                    ));
                }
                self.note(format!("stream {i}: no reader for a new writer"));
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// An output FIFO's reader goes away and comes back (the data waits in the FIFO);
    /// any other reader going away breaks the target.
    fn reader_goes(&mut self, i: usize) -> Outcome {
        let s = &mut self.streams[i];
        if s.kind == Kind::OutFile || s.reader.is_none() {
            return Ok(());
        }
        s.reader = None;
        if s.kind != Kind::OutFifo {
            s.lossy = true;
        }
        let line = format!("stream {i}: the reader went away");
        self.note(line);
        Ok(())
    }

    fn close_io(&mut self, i: usize) -> Outcome {
        let s = &mut self.streams[i];
        if !s.kind.input() || s.close_io {
            return Ok(());
        }
        s.close_io = true;
        self.pumps.close_input(s.id);
        self.note(format!("stream {i}: CloseIO"));
        Ok(())
    }

    fn process_gone(&mut self, i: usize) -> Outcome {
        let s = &mut self.streams[i];
        if !s.kind.input() || s.finished {
            return Ok(());
        }
        s.finished = true;
        s.lossy = true;
        self.pumps.finish(s.id);
        self.note(format!("stream {i}: the process went away"));
        Ok(())
    }

    // The loop.

    /// One turn of the loop, as the shim's: events, then the pumps with more to move.
    fn turn(&mut self, timeout: Duration) -> usize {
        let mut events = poller::events::<16>();
        let n = self.poller.wait(&mut events, timeout);
        for ev in &events[..n] {
            if let (ready, Some(token)) = poller::parts(ev) {
                self.pumps.ready(token, ready);
            }
        }
        self.pumps.run_pending();
        n
    }

    /// Turns until nothing is left to do now; a loop that never gets there is busy.
    fn quiet(&mut self) -> Outcome {
        for _ in 0..100_000 {
            let n = self.turn(Duration::ZERO);
            if n == 0 && self.pumps.next_run() != Some(Duration::ZERO) {
                return Ok(());
            }
        }
        let mut events = poller::events::<16>();
        let n = self.poller.wait(&mut events, Duration::ZERO);
        let seen: Vec<String> = events[..n]
            .iter()
            .map(|ev| {
                let (ready, token) = poller::parts(ev);
                format!("token {token:?} events {ready:#x}")
            })
            .collect();
        Err(format!(
            "the loop never went quiet: a busy loop ({} pending; events: {})",
            if self.pumps.next_run() == Some(Duration::ZERO) {
                "pumps"
            } else {
                "no pumps"
            },
            seen.join(", ")
        ))
    }

    /// Goes quiet, then checks that no running copy has data waiting and room for it.
    fn settle_quietly(&mut self) -> Outcome {
        self.quiet()?;
        for i in 0..self.streams.len() {
            // Pipes and FIFOs change only when this thread acts; a log file's writer is
            // a thread, and a pty moves its input on in a kernel worker: the edge they
            // cause may come a moment after the room they make (longer on a busy
            // machine). A stall lasts; a moment does not.
            let patience = match self.streams[i].kind {
                Kind::OutFile | Kind::InPty | Kind::OutPty => 100,
                _ => 1,
            };
            let mut tries = 0;
            while self.stalled(i) {
                tries += 1;
                if tries > patience {
                    return Err(format!(
                        "stream {i} stalled: its source holds data and its target has room, \
                         yet the loop is quiet"
                    ));
                }
                self.turn(Duration::from_millis(if patience > 1 { 20 } else { 0 }));
                self.quiet()?;
            }
        }
        self.check_counts()?;
        self.note("quiet".into());
        Ok(())
    }

    fn stalled(&self, i: usize) -> bool {
        let s = &self.streams[i];
        if !self.pumps.is_running(s.id) {
            return false;
        }
        let source = poll_now(s.source_fd, libc::POLLIN);
        let waiting = source & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0;
        // A broken output target may have been let go of (its fd number may be another
        // file's by now): the copy then drains the source, so room is always there.
        let room = if s.lossy && !s.kind.input() {
            true
        } else {
            let target = poll_now(s.target_fd, libc::POLLOUT);
            target & (libc::POLLOUT | libc::POLLERR) != 0
        };
        // A pty wakes its master's writers only once its slave's reader has taken all
        // but a few bytes (the line discipline's unthrottle mark), though the master
        // says it has room long before: room, for a pty, is a slave with nothing unread.
        let room = room
            && (s.kind != Kind::InPty
                || s.reader
                    .as_ref()
                    .is_some_and(|r| unread_raw(r.as_raw_fd()) == 0));
        waiting && room
    }

    /// An output counts as running until its copy (and its log writer) has finished.
    fn check_counts(&self) -> Outcome {
        for (i, s) in self.streams.iter().enumerate() {
            let n = s.outputs.load(Ordering::SeqCst);
            if n > 2 {
                return Err(format!("stream {i}: its output count is {n}"));
            }
            if s.kind != Kind::OutFile && !s.kind.input() {
                let running = self.pumps.is_running(s.id) as usize;
                if n != running {
                    return Err(format!(
                        "stream {i}: output count {n} with the copy {}",
                        if running == 1 { "running" } else { "ended" }
                    ));
                }
            }
        }
        Ok(())
    }

    // The end.

    /// Lets everything flow (readers back and reading all), then checks the model.
    fn settle(&mut self) -> Outcome {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.settle_quietly()?;
            let before: Vec<(u64, bool, bool)> = self
                .streams
                .iter()
                .map(|s| (s.delivered, s.eof, self.pumps.is_running(s.id)))
                .collect();
            for i in 0..self.streams.len() {
                loop {
                    let was = self.streams[i].delivered;
                    self.read(i, 1 << 20)?;
                    if self.streams[i].delivered == was {
                        break;
                    }
                }
            }
            self.settle_quietly()?;
            let after: Vec<(u64, bool, bool)> = self
                .streams
                .iter()
                .map(|s| (s.delivered, s.eof, self.pumps.is_running(s.id)))
                .collect();
            let threads_busy = self.streams.iter().any(|s| {
                s.kind == Kind::OutFile && s.outputs.load(Ordering::SeqCst) > 0 && s.closed
            });
            let files_behind = self
                .streams
                .iter()
                .any(|s| s.kind == Kind::OutFile && s.delivered < s.written);
            if before == after && !threads_busy && !files_behind {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("the streams did not settle within 10 s".into());
            }
            if threads_busy || files_behind {
                // The log writer works beside the loop: wait for it like the loop does.
                self.turn(Duration::from_millis(5));
            }
        }
    }

    fn wind_up(&mut self, c: &mut dyn Choices) -> Outcome {
        // Readers come back; some writers and CloseIOs happen or do not.
        for i in 0..self.streams.len() {
            let s = &self.streams[i];
            if s.kind == Kind::OutFifo && s.reader.is_none() {
                self.read(i, 1)?;
            }
        }
        self.settle()?;
        self.check_all_arrived()?;
        for i in 0..self.streams.len() {
            let kind = self.streams[i].kind;
            if kind.input() {
                match c.below(3) {
                    0 => {}
                    1 => self.close_io(i)?,
                    _ => {
                        while !self.streams[i].writers.is_empty() {
                            self.writer_goes(i)?;
                        }
                        self.close_io(i)?;
                    }
                }
            } else if c.below(4) != 0 {
                self.writer_goes(i)?;
            }
        }
        self.settle()?;
        self.check_all_arrived()?;
        self.check_ends()
    }

    /// Whatever was written has arrived, where nothing may be dropped.
    fn check_all_arrived(&self) -> Outcome {
        for (i, s) in self.streams.iter().enumerate() {
            if s.lossy {
                continue;
            }
            if s.delivered != s.written {
                return Err(format!(
                    "stream {i} ({:?}): {} of {} bytes arrived once everything settled",
                    s.kind, s.delivered, s.written
                ));
            }
        }
        Ok(())
    }

    /// Each stream ended exactly when the model says.
    fn check_ends(&self) -> Outcome {
        for (i, s) in self.streams.iter().enumerate() {
            let running = self.pumps.is_running(s.id);
            let must_end = if s.kind.input() {
                s.finished || (s.close_io && s.writers.is_empty())
            } else {
                s.closed
            };
            // A broken target ends an input when the copy next tries to write to it.
            let may_end = must_end || (s.kind.input() && s.lossy);
            if must_end && running {
                return Err(format!(
                    "stream {i} ({:?}) should have ended but runs",
                    s.kind
                ));
            }
            if !may_end && !running {
                return Err(format!(
                    "stream {i} ({:?}) ended, though its {} still open",
                    s.kind,
                    if s.kind.input() {
                        "input was not closed (no CloseIO, or a writer)"
                    } else {
                        "container's end is"
                    }
                ));
            }
            // A terminal's input ends without its process seeing it: the console stays.
            let end_visible =
                s.reader.is_some() && !s.lossy && !matches!(s.kind, Kind::OutFile | Kind::InPty);
            if end_visible && !running && !s.eof {
                return Err(format!(
                    "stream {i} ({:?}) ended, but its reader saw no end",
                    s.kind
                ));
            }
            if running && s.eof {
                return Err(format!(
                    "stream {i} ({:?}): its reader saw an end, but it runs",
                    s.kind
                ));
            }
            if s.kind == Kind::OutFile && s.closed && s.outputs.load(Ordering::SeqCst) != 0 {
                return Err(format!("stream {i}: the log writer never finished"));
            }
        }
        Ok(())
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for s in &self.streams {
            self.pumps.finish(s.id);
        }
        // Every writer and reader goes, then the log writers see their end.
        self.streams.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How much one write offers: mostly small, sometimes more than a step's budget.
fn write_size(c: &mut dyn Choices) -> usize {
    match c.below(10) {
        0..=3 => 1 + c.below(64) as usize,
        4..=6 => 1 + c.below(8192) as usize,
        7..=8 => 1 + c.below(65536) as usize,
        _ => 200_000 + c.below(300_000) as usize,
    }
}

fn pipe(size: i32) -> Result<(OwnedFd, OwnedFd), String> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: both fds are new and owned here.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    set_pipe_size(&w, size);
    Ok((r, w))
}

fn set_pipe_size(fd: &OwnedFd, size: i32) {
    // SAFETY: F_SETPIPE_SZ on a pipe fd we hold; a failure leaves the size as it was.
    unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, size) };
}

fn mkfifo(path: &std::path::Path) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(format!("mkfifo: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

fn open_fifo_reader(path: &std::path::Path) -> Result<File, String> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("opening the FIFO's reader: {e}"))
}

fn open_fifo_writer(path: &std::path::Path) -> Result<File, String> {
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("opening the FIFO's writer: {e}"))
}

/// A pty in raw mode (bytes pass unchanged, nothing echoed): (master, slave).
fn raw_pty() -> Result<(OwnedFd, File), String> {
    let mut master = 0;
    let mut slave = 0;
    // SAFETY: openpty writes two fds; the name, termios and winsize pointers may be null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(format!("openpty: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: both fds are new and owned here.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), File::from_raw_fd(slave)) };
    // SAFETY: termios is plain data, filled by tcgetattr before use.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: tcgetattr and tcsetattr on our slave with a valid termios.
    unsafe {
        libc::tcgetattr(slave.as_raw_fd(), &mut t);
        libc::cfmakeraw(&mut t);
        libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &t);
        libc::fcntl(master.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC);
        libc::fcntl(slave.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC);
        libc::fcntl(
            slave.as_raw_fd(),
            libc::F_SETFL,
            libc::O_NONBLOCK | libc::O_RDWR,
        );
    }
    Ok((master, slave))
}

fn unread_raw(fd: RawFd) -> i32 {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through a pointer to a local.
    if unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) } != 0 {
        return 0;
    }
    n
}

fn poll_now(fd: RawFd, events: libc::c_short) -> libc::c_short {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one pollfd on the stack, no timeout.
    match unsafe { libc::poll(&mut p, 1, 0) } {
        1 => p.revents,
        _ => 0,
    }
}
