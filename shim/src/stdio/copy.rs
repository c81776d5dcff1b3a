//! One copy per stream: stdout and stderr from the container's pipes (or pty master) to
//! where the manager wants them, stdin the other way.

use super::uri::{self, Output};
use super::{fifo, logger};
use runc_driver::Stdio3;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The streams a manager named for a process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamPaths {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// The streams of one container process, held by the shim.
pub struct ProcessIo {
    pub paths: StreamPaths,
    /// Output copies still running; an exit is reported once they have drained.
    outputs: Arc<Pending>,
    /// Dropped when stdin should close; the stdin copy polls the other end.
    stdin_close: Option<OwnedFd>,
    /// The pty master of a terminal process, for resizing.
    console: Option<OwnedFd>,
}

#[derive(Default)]
struct Pending {
    count: Mutex<usize>,
    done: Condvar,
}

impl Pending {
    fn start(self: &Arc<Self>) -> Arc<Self> {
        *self.count.lock().unwrap() += 1;
        self.clone()
    }

    fn finish(&self) {
        let mut n = self.count.lock().unwrap();
        *n = n.saturating_sub(1);
        self.done.notify_all();
    }
}

/// Who a process's output belongs to, for logging binaries.
pub struct Owner<'a> {
    pub container_id: &'a str,
    pub namespace: &'a str,
    /// uid and gid for the container's pipe ends (runtime option IoUid/IoGid).
    pub io_ids: Option<(u32, u32)>,
}

impl ProcessIo {
    fn empty(paths: StreamPaths) -> ProcessIo {
        ProcessIo {
            paths,
            outputs: Arc::new(Pending::default()),
            stdin_close: None,
            console: None,
        }
    }

    /// Pipes for a process without a terminal. Returns the container's ends, for the
    /// runtime's create or exec.
    pub fn pipes(paths: StreamPaths, owner: &Owner) -> io::Result<(ProcessIo, Stdio3)> {
        let stdout = uri::parse(&paths.stdout).map_err(invalid)?;
        let stderr = uri::parse(&paths.stderr).map_err(invalid)?;
        let mut io = ProcessIo::empty(paths);
        let mut stdio = Stdio3::default();

        if let Output::Binary { path, args } = &stdout {
            // A logging binary takes both streams.
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            chown(&out_w, owner.io_ids)?;
            chown(&err_w, owner.io_ids)?;
            logger::start(
                path,
                args,
                owner.container_id,
                owner.namespace,
                out_r,
                err_r,
            )?;
            stdio.stdout = Some(out_w);
            stdio.stderr = Some(err_w);
        } else {
            for (target, slot, name) in [
                (&stdout, &mut stdio.stdout, "stdout"),
                (&stderr, &mut stdio.stderr, "stderr"),
            ] {
                let Some(target) = open_target(target, name)? else {
                    continue;
                };
                let (r, w) = pipe()?;
                chown(&w, owner.io_ids)?;
                *slot = Some(w);
                spawn_output_copy(&io.outputs, r, target, name, Transfer::Splice)?;
            }
        }
        if !io.paths.stdin.is_empty() {
            let (r, w) = pipe()?;
            chown(&r, owner.io_ids)?;
            stdio.stdin = Some(r);
            io.start_stdin_copy(w)?;
        }
        Ok((io, stdio))
    }

    /// Copies for a terminal process, once the runtime has sent its pty master. The
    /// terminal merges stderr into stdout.
    pub fn terminal(paths: StreamPaths, master: OwnedFd) -> io::Result<ProcessIo> {
        let stdout = uri::parse(&paths.stdout).map_err(invalid)?;
        if matches!(stdout, Output::Binary { .. }) {
            return Err(invalid(
                "a terminal's output cannot go to a logging binary".into(),
            ));
        }
        let mut io = ProcessIo::empty(paths);
        if let Some(target) = open_target(&stdout, "stdout")? {
            spawn_output_copy(
                &io.outputs,
                master.try_clone()?,
                target,
                "stdout",
                Transfer::ReadWrite,
            )?;
        }
        if !io.paths.stdin.is_empty() {
            io.start_stdin_copy(master.try_clone()?)?;
        }
        io.console = Some(master);
        Ok(io)
    }

    fn start_stdin_copy(&mut self, target: OwnedFd) -> io::Result<()> {
        let stdin = self.paths.stdin.clone();
        let source = fifo::open_input(Path::new(&stdin))
            .map_err(|e| annotate(e, &format!("opening stdin {stdin}")))?;
        let (close_r, close_w) = pipe()?;
        self.stdin_close = Some(close_w);
        std::thread::Builder::new()
            .name("copy-stdin".into())
            .spawn(move || copy_input(source, target, close_r))?;
        Ok(())
    }

    /// A handle to wait for the output copies with, usable without holding the process.
    pub fn output_waiter(&self) -> OutputWaiter {
        OutputWaiter(self.outputs.clone())
    }

    /// Closes the container's stdin once what the manager has already written to the
    /// FIFO has been passed on.
    pub fn close_stdin(&mut self) {
        // Dropping the write end wakes the stdin copy's poll with a hang-up.
        self.stdin_close = None;
    }

    /// Sets the terminal's window size.
    pub fn resize(&self, width: u32, height: u32) -> io::Result<()> {
        let console = self.console.as_ref().ok_or_else(|| {
            io::Error::new(io::ErrorKind::Unsupported, "the process has no terminal")
        })?;
        let size = libc::winsize {
            ws_row: height as u16,
            ws_col: width as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ with a valid winsize on our pty master.
        if unsafe { libc::ioctl(console.as_raw_fd(), libc::TIOCSWINSZ, &size) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Waits for a process's output copies to finish.
pub struct OutputWaiter(Arc<Pending>);

impl OutputWaiter {
    /// Waits until the container's output has been copied to the end (every writer of
    /// the pipes has closed them), at most `timeout`. False if it timed out.
    pub fn wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut n = self.0.count.lock().unwrap();
        while *n > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            n = self.0.done.wait_timeout(n, left).unwrap().0;
        }
        true
    }
}

impl Drop for ProcessIo {
    fn drop(&mut self) {
        self.close_stdin();
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

fn annotate(e: io::Error, context: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{context}: {e}"))
}

fn open_target(target: &Output, name: &str) -> io::Result<Option<File>> {
    match target {
        Output::None => Ok(None),
        Output::Fifo(p) => fifo::open_output(p)
            .map(Some)
            .map_err(|e| annotate(e, &format!("opening {name} {}", p.display()))),
        Output::File(p) => {
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir)?;
            }
            OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o640)
                .custom_flags(libc::O_CLOEXEC)
                .open(p)
                .map(Some)
                .map_err(|e| annotate(e, &format!("opening log file {}", p.display())))
        }
        Output::Binary { .. } => Err(invalid(format!(
            "{name} cannot go to a logging binary unless stdout does"
        ))),
    }
}

/// How an output copy moves bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Transfer {
    /// splice(2), pipe to pipe or file, without copying through the shim.
    Splice,
    /// read and write: for a pty master, whose splice holds data back until more comes.
    ReadWrite,
}

fn spawn_output_copy(
    pending: &Arc<Pending>,
    source: OwnedFd,
    target: File,
    name: &str,
    transfer: Transfer,
) -> io::Result<()> {
    let pending = pending.start();
    let spawned = std::thread::Builder::new()
        .name(format!("copy-{name}"))
        .spawn({
            let pending = pending.clone();
            move || {
                copy_output(source, target, transfer);
                pending.finish();
            }
        });
    if let Err(e) = spawned {
        pending.finish();
        return Err(e);
    }
    Ok(())
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 fills two fds we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn chown(fd: &OwnedFd, owner: Option<(u32, u32)>) -> io::Result<()> {
    if let Some((uid, gid)) = owner {
        // SAFETY: fchown on an fd we own.
        if unsafe { libc::fchown(fd.as_raw_fd(), uid, gid) } != 0 {
            return Err(annotate(
                io::Error::last_os_error(),
                "chown of a stdio pipe",
            ));
        }
    }
    Ok(())
}

/// The read end was closed by every writer. A pty master reports that as EIO.
fn is_end(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EIO)
}

/// Copies until the container's side is closed, then closes the target, which is how
/// the manager learns the stream ended.
fn copy_output(source: OwnedFd, target: File, transfer: Transfer) {
    if transfer == Transfer::Splice && !splice_all(&source, &target) {
        return;
    }
    let mut source = File::from(source);
    let mut target = target;
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match source.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_end(&e) => return,
            Err(e) => {
                log::warn!("reading container output: {e}");
                return;
            }
        };
        if let Err(e) = target.write_all(&buf[..n]) {
            log::warn!("writing container output: {e}");
            drain(source.into());
            return;
        }
    }
}

/// Splices until the source ends (false: done) or splice is refused (true: fall back
/// to read and write).
fn splice_all(source: &OwnedFd, target: &File) -> bool {
    loop {
        // SAFETY: splice between two open fds, no offsets.
        let n = unsafe {
            libc::splice(
                source.as_raw_fd(),
                std::ptr::null_mut(),
                target.as_raw_fd(),
                std::ptr::null_mut(),
                1 << 20,
                libc::SPLICE_F_MOVE,
            )
        };
        if n > 0 {
            continue;
        }
        if n == 0 {
            return false;
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) | Some(libc::EAGAIN) => continue,
            Some(libc::EINVAL) => return true,
            _ if is_end(&err) => return false,
            _ => {
                log::warn!("copying container output: {err}");
                if let Ok(dup) = source.try_clone() {
                    drain(dup);
                }
                return false;
            }
        }
    }
}

/// When the manager's side is broken, keep reading so the container never blocks on a
/// full pipe.
fn drain(source: OwnedFd) {
    let mut source = File::from(source);
    let mut buf = [0u8; 8192];
    while matches!(source.read(&mut buf), Ok(n) if n > 0) {}
}

/// Copies the manager's input to the container until the manager closes its end of
/// the FIFO or asks (CloseIO) for stdin to be closed; then the container sees EOF.
fn copy_input(source: File, target: OwnedFd, close: OwnedFd) {
    let mut target = File::from(target);
    let mut source = source;
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let mut fds = [
            libc::pollfd {
                fd: source.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: close.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: poll on two valid pollfds.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        let closing = fds[1].revents != 0;
        if fds[0].revents != 0 || closing {
            // Pass on whatever is readable now; stop at EOF.
            loop {
                match source.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        if target.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => return,
                }
            }
        }
        if closing {
            return;
        }
    }
}
