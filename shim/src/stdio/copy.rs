//! One copy per stream: stdout and stderr from the container's pipes to the manager's
//! FIFOs, stdin the other way.

use super::fifo;
use runc_driver::Stdio3;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The streams of one container process, held by the shim.
pub struct ProcessIo {
    pub stdin_path: String,
    pub stdout_path: String,
    pub stderr_path: String,
    /// Output copies still running; an exit is reported once they have drained.
    outputs: Arc<Pending>,
    /// Written to when stdin should close; the stdin copy polls it.
    stdin_close: Option<OwnedFd>,
}

#[derive(Default)]
struct Pending {
    count: Mutex<usize>,
    done: Condvar,
}

impl Pending {
    fn finish(&self) {
        let mut n = self.count.lock().unwrap();
        *n = n.saturating_sub(1);
        self.done.notify_all();
    }
}

impl ProcessIo {
    /// Creates the pipes for a process whose streams the manager named, and starts the
    /// copies. Returns the container's ends, for the runtime's create or exec. `owner` is
    /// the uid and gid the container's pipe ends get (for a container that runs as
    /// another user and reopens /proc/self/fd/N).
    pub fn open(
        stdin: &str,
        stdout: &str,
        stderr: &str,
        owner: Option<(u32, u32)>,
    ) -> io::Result<(ProcessIo, Stdio3)> {
        let mut io = ProcessIo {
            stdin_path: stdin.to_string(),
            stdout_path: stdout.to_string(),
            stderr_path: stderr.to_string(),
            outputs: Arc::new(Pending::default()),
            stdin_close: None,
        };
        let mut stdio = Stdio3::default();
        for (path, slot, name) in [
            (stdout, &mut stdio.stdout, "stdout"),
            (stderr, &mut stdio.stderr, "stderr"),
        ] {
            if path.is_empty() {
                continue;
            }
            let target = fifo::open_output(Path::new(path))
                .map_err(|e| annotate(e, &format!("opening {name} {path}")))?;
            let (r, w) = pipe()?;
            chown(&w, owner)?;
            *slot = Some(w);
            *io.outputs.count.lock().unwrap() += 1;
            let pending = io.outputs.clone();
            std::thread::Builder::new()
                .name(format!("copy-{name}"))
                .spawn(move || {
                    copy_output(r, target);
                    pending.finish();
                })?;
        }
        if !stdin.is_empty() {
            let source = fifo::open_input(Path::new(stdin))
                .map_err(|e| annotate(e, &format!("opening stdin {stdin}")))?;
            let (r, w) = pipe()?;
            chown(&r, owner)?;
            stdio.stdin = Some(r);
            let (close_r, close_w) = pipe()?;
            io.stdin_close = Some(close_w);
            std::thread::Builder::new()
                .name("copy-stdin".into())
                .spawn(move || copy_input(source, w, close_r))?;
        }
        Ok((io, stdio))
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

fn annotate(e: io::Error, context: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{context}: {e}"))
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

/// Copies until the container's side is closed, then closes the FIFO, which is how
/// the manager learns the stream ended. splice(2) moves pages pipe to pipe without
/// copying them through the shim; anything that refuses splice gets read and write.
fn copy_output(source: OwnedFd, target: File) {
    loop {
        // SAFETY: splice between two fds we own, no offsets.
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
            return;
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) | Some(libc::EAGAIN) => continue,
            Some(libc::EINVAL) => break,
            _ => {
                log::warn!("copying container output: {err}");
                drain(source);
                return;
            }
        }
    }
    let mut source = File::from(source);
    let mut target = target;
    if let Err(e) = io::copy(&mut source, &mut target) {
        log::warn!("copying container output: {e}");
        drain(source.into());
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
