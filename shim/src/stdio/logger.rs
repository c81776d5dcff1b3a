//! `binary://` and `binary-v2://` log URIs: a logging program gets the container's stdout
//! on fd 3, its stderr on fd 4, and fd 5 (containerd's `CONTAINER_WAIT`) to say it is
//! ready: `binary://` closes it (or exits), `binary-v2://` writes a byte first, so that a
//! logger that dies at start is not taken for a ready one.

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

const READY_TIMEOUT_MS: u16 = 10_000;

/// The program a log URI names.
pub struct Logger<'a> {
    pub path: &'a Path,
    pub args: &'a [String],
    pub strict_ready: bool,
}

/// Starts the logger with the streams on fds 3 and 4 and waits (at most 10 s) until it
/// says it is ready; its pid.
pub fn start(
    logger: &Logger,
    container_id: &str,
    namespace: &str,
    stdout: OwnedFd,
    stderr: OwnedFd,
) -> io::Result<u32> {
    let (ready_r, ready_w) = std::io::pipe()?;
    let pid = spawn(
        logger,
        container_id,
        namespace,
        [stdout, stderr, ready_w.into()],
    )?;
    await_ready(logger, pid, ready_r)?;
    Ok(pid)
}

/// Runs the logger with `fds` as its fds 3, 4 and 5; the shim's copies are closed.
fn spawn(
    logger: &Logger,
    container_id: &str,
    namespace: &str,
    fds: [OwnedFd; 3],
) -> io::Result<u32> {
    let sources = fds.each_ref().map(|fd| fd.as_raw_fd());
    let path = logger.path;
    let mut cmd = Command::new(path);
    cmd.args(logger.args)
        .env("CONTAINER_ID", container_id)
        .env("CONTAINER_NAMESPACE", namespace)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            crate::sys::reaper::unblock_all_signals()?;
            // Move the sources out of the way first so that no dup2 below overwrites
            // one that is still to be moved.
            let mut high = [0; 3];
            for (i, fd) in sources.iter().enumerate() {
                high[i] = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 64);
                if high[i] < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            for (i, fd) in high.iter().enumerate() {
                if libc::dup2(*fd, 3 + i as i32) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("starting log binary {}: {e}", path.display()),
        )
    })?;
    Ok(child.id())
}

/// The logger closes fd 5 (or the kernel does, when it exits) when it is ready; a
/// `binary-v2://` one writes a byte first.
fn await_ready(logger: &Logger, pid: u32, mut ready_r: std::io::PipeReader) -> io::Result<()> {
    let path = logger.path;
    let mut pfd = [PollFd::new(ready_r.as_fd(), PollFlags::POLLIN)];
    let n = poll(&mut pfd, PollTimeout::from(READY_TIMEOUT_MS)).unwrap_or(0);
    if n <= 0 {
        kill_logger(pid);
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "log binary {} did not close fd 5 to say it is ready within {} s",
                path.display(),
                READY_TIMEOUT_MS / 1000
            ),
        ));
    }
    let mut buf = [0u8; 1];
    let said_ready = matches!(ready_r.read(&mut buf), Ok(1));
    if logger.strict_ready && !said_ready {
        kill_logger(pid);
        return Err(io::Error::other(format!(
            "log binary {} closed fd 5 without writing to it: a binary-v2 logger says it \
             is ready by writing a byte (it may have failed to start)",
            path.display()
        )));
    }
    Ok(())
}

/// Ends a logger that did not come up (it is our child, not yet reaped: the pid is its).
fn kill_logger(pid: u32) {
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
}
