//! Running libcontainer's process-creating work in a forked copy of the shim.
//!
//! libcontainer builds a container from the calling process: it marks the caller
//! non-dumpable, writes the container's oom_score_adj into the caller, binds sockets
//! relative to a changed working directory, and clones its intermediate process with a
//! raw clone3 that skips glibc's fork handlers. Done in the shim itself, the first three
//! would outlive the call and the last could copy a malloc lock held by the shim's other
//! thread into the child. A plain fork(2) gives each create and exec a single-threaded
//! copy of the small shim (no exec, no runtime start-up) whose side effects end with it;
//! the container's processes it starts are re-parented to the shim, a subreaper, when it
//! exits.
//!
//! The fork copies every lock of the shim in the state it has at that moment, held by
//! threads that do not exist in the child; the child (and the container's processes it
//! starts, until they exec) must never wait for one. What each lock comes to:
//! - malloc's: glibc's fork(2) takes them all before forking and resets them in the
//!   child (libc::fork, not a raw clone, for this reason).
//! - std's environment lock: other threads of the shim hold it for reading at any
//!   time (a spawn holds it across its fork, `std::env::var` while it reads). The child
//!   only ever reads (libcontainer's LISTEN_FDS, a hook's PATH lookup and spawn), and a
//!   read lock held by a vanished thread lets readers pass; only a writer would wait for
//!   good. Nothing here writes the environment: the executor keeps the container's
//!   variables for execve ([`crate::executor`]), and the shim writes its own only before
//!   its first thread starts.
//! - the log: the child turns it off at once, so the logger's lock is never taken.
//! - the monitor's own lock is held by the forking thread itself, around the fork; the
//!   child never touches the monitor, nor this driver's state-file turns.

use skiff_oci_runtime::{Error, ProcessMonitor, Result};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;

/// Runs `work` in a forked child and returns its outcome: `Err` carries the message the
/// child wrote before exiting non-zero.
pub(crate) fn in_child(
    command: &'static str,
    monitor: &dyn ProcessMonitor,
    work: impl FnOnce() -> std::result::Result<(), String>,
) -> Result<()> {
    // Close-on-exec: the container's process must not keep the write end open.
    let (reader, mut writer) =
        std::io::pipe().map_err(|e| io_error(command, "creating a pipe", e))?;
    let mut work = Some(work);
    let pid = monitor
        .start(&mut || {
            // SAFETY: fork(2); the child only runs `work` and then _exit(2)s, never
            // returning into the caller's stack frames.
            let pid = unsafe { libc::fork() };
            if pid < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if pid == 0 {
                let work = work.take().expect("forked once");
                child(command, &mut writer, work);
            }
            Ok(pid as u32)
        })
        .map_err(|e| io_error(command, "forking", e))?;
    drop(writer);
    // The container's process the helper leaves waiting for Start holds a copy of the
    // pipe until it execs, so EOF would not come: wait for the helper, then take what it
    // wrote without blocking.
    let status = monitor
        .wait(pid)
        .map_err(|e| io_error(command, "waiting for the helper", e))?;
    let mut message = String::new();
    // SAFETY: fcntl on the pipe end we own.
    unsafe { libc::fcntl(reader.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    let _ = (&reader).read_to_string(&mut message);
    if status.success() {
        return Ok(());
    }
    if message.is_empty() {
        use std::os::unix::process::ExitStatusExt;
        message = match (status.signal(), status.code()) {
            (Some(signal), _) => format!("helper killed by signal {signal}"),
            (None, code) => format!("helper exited with status {}", code.unwrap_or(-1)),
        };
    }
    Err(crate::report::failed(command, message))
}

/// The shim blocks SIGCHLD (it reads it from a signalfd) and ignores SIGPIPE; a signal
/// mask and ignored signals survive execve, so the container's processes would inherit
/// both. They get the defaults, as a runtime binary's children do.
fn reset_signals() {
    // SAFETY: plain signal-state calls on this single-threaded child.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The helper's life: do the work, say what failed, and leave without running the
/// parent's exit handlers or destructors (its buffered state belongs to the shim).
fn child(
    command: &'static str,
    writer: &mut std::io::PipeWriter,
    work: impl FnOnce() -> std::result::Result<(), String>,
) -> ! {
    log::set_max_level(log::LevelFilter::Off);
    reset_signals();
    ensure_cwd();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
        .unwrap_or_else(|_| Err(format!("libcontainer {command} panicked")));
    let code = match outcome {
        Ok(()) => 0,
        Err(message) => {
            let _ = writer.write_all(message.as_bytes());
            1
        }
    };
    // SAFETY: ends the child at once, as a forked child of a threaded process must.
    unsafe { libc::_exit(code) }
}

fn io_error(command: &'static str, what: &str, source: std::io::Error) -> Error {
    Error::Io {
        context: format!("libcontainer {command}: {what}"),
        source,
    }
}

/// libcontainer reads the working directory to return to it after binding its sockets.
/// A pod's shim works in its first container's bundle, which is gone once that container
/// is deleted: then "/" stands in, as nothing relative can resolve there any more.
pub(crate) fn ensure_cwd() {
    if std::env::current_dir().is_err() {
        let _ = std::env::set_current_dir("/");
    }
}
