//! The shim is a subreaper: every process it starts (runtime commands, and the container
//! processes they leave behind) is reaped here with `waitpid(-1, WNOHANG)`, when the
//! event loop sees SIGCHLD on the reaper's signalfd. The loop is the only reaper.
//!
//! A runtime command runs on a thread of its own ([`crate::server`]); it is started
//! through the reaper ([`ProcessMonitor::start`]), which records its pid before it can
//! end, and its thread waits for the exit the loop routes back to it. Every other exit
//! goes to the task model, which matches it to the process that owns the pid.

use nix::sys::signalfd::{SfdFlags, SignalFd};
use skiff_oci_runtime::ProcessMonitor;
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Instant, SystemTime};

/// A process that ended, as the reaper saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub pid: u32,
    /// The exit code, or 128 + the signal that killed it (the shell's convention, which
    /// containerd reports).
    pub status: u32,
    /// When, for the manager.
    pub at: SystemTime,
    /// When, on the clock runtime commands are timed with: an exit reaped before a
    /// command started cannot be the exit of a process that command started.
    pub reaped: Instant,
}

impl Exit {
    /// Whether the signal `sig` ended the process (as far as its status says).
    pub fn killed_by(&self, sig: i32) -> bool {
        self.status == 128 + sig as u32
    }

    /// An exit the shim states itself (a process deleted before it ran).
    pub fn now(pid: u32, status: u32) -> Exit {
        Exit {
            pid,
            status,
            at: SystemTime::now(),
            reaped: Instant::now(),
        }
    }

    pub fn from_wait_status(pid: u32, raw: i32) -> Exit {
        let status = if libc::WIFEXITED(raw) {
            libc::WEXITSTATUS(raw) as u32
        } else if libc::WIFSIGNALED(raw) {
            128 + libc::WTERMSIG(raw) as u32
        } else {
            raw as u32
        };
        Exit::now(pid, status)
    }
}

pub struct Reaper {
    signalfd: SignalFd,
    /// Processes started through the monitor, and their exit once reaped.
    commands: Mutex<HashMap<u32, Option<ExitStatus>>>,
    /// Signalled when the exit of such a process has been reaped.
    command_ended: Condvar,
}

impl Reaper {
    /// Makes this process a subreaper and blocks SIGCHLD so that it is only seen
    /// through the reaper's signalfd. Call before any other thread exists: threads
    /// inherit the mask.
    pub fn prepare_process() -> io::Result<()> {
        reset_inherited_ignores();
        nix::sys::prctl::set_child_subreaper(true)?;
        let mut set = nix::sys::signal::SigSet::empty();
        set.add(nix::sys::signal::Signal::SIGCHLD);
        set.thread_block()?;
        Ok(())
    }

    pub fn new() -> io::Result<Arc<Reaper>> {
        Ok(Arc::new(Reaper {
            signalfd: signalfd_for_sigchld()?,
            commands: Mutex::new(HashMap::new()),
            command_ended: Condvar::new(),
        }))
    }

    /// Readable when SIGCHLD is pending: the loop then calls [`Reaper::reap`].
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.signalfd.as_fd()
    }

    /// Reaps every child that has ended; hands the exits of monitored processes to
    /// their waiters and returns the others, oldest first.
    pub fn reap(&self) -> Vec<Exit> {
        // Consume the pending signal first: a child that ends after this read signals
        // again, so none is left unreaped with nothing to wake the loop.
        while let Ok(Some(_)) = self.signalfd.read_signal() {}
        let mut exits = Vec::new();
        while let Some((pid, raw)) = reap_one() {
            let mut commands = self.commands.lock().unwrap();
            match commands.get_mut(&pid) {
                Some(slot) => {
                    *slot = Some(ExitStatus::from_raw(raw));
                    self.command_ended.notify_all();
                }
                None => exits.push(Exit::from_wait_status(pid, raw)),
            }
        }
        exits
    }
}

/// One `waitpid(-1, WNOHANG)`: Some((pid, status)), or None when nothing (more) has
/// ended.
fn reap_one() -> Option<(u32, i32)> {
    loop {
        let mut raw = 0;
        // SAFETY: waitpid with a valid out pointer; the raw status is what ExitStatus and
        // the exit code conversion take (nix's WaitStatus would have to be re-encoded).
        let pid = unsafe { libc::waitpid(-1, &mut raw, libc::WNOHANG) };
        if pid > 0 {
            return Some((pid as u32, raw));
        }
        if pid < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        return None;
    }
}

/// Signals the shim was started with set to "ignore" are inherited by everything it
/// runs, containers included; put them back to default. SIGPIPE stays ignored: the shim
/// handles EPIPE itself, and std resets it for children. glibc refuses to touch its own
/// signals (32 and 33): containerd's ignored 32 still reaches containers, where glibc
/// programs install their own handler for it anyway.
fn reset_inherited_ignores() {
    for sig in 1..=libc::SIGRTMAX() {
        if sig == libc::SIGPIPE || sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: reading and, when ignored, resetting one signal's disposition.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) == 0
                && old.sa_sigaction == libc::SIG_IGN
            {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(sig, &dfl, std::ptr::null_mut());
            }
        }
    }
}

/// For a child the shim starts itself: the signal mask it inherits blocks SIGCHLD
/// (the reaper's signalfd needs that), which would break a shell's `wait`.
/// Async-signal-safe: for use between fork and exec.
pub fn unblock_all_signals() -> io::Result<()> {
    nix::sys::signal::SigSet::empty().thread_set_mask()?;
    Ok(())
}

fn signalfd_for_sigchld() -> io::Result<SignalFd> {
    let mut set = nix::sys::signal::SigSet::empty();
    set.add(nix::sys::signal::Signal::SIGCHLD);
    Ok(SignalFd::with_flags(
        &set,
        SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
    )?)
}

/// Processes are recorded under the lock the reaper takes before it routes an exit, so
/// one that ends at once is still routed to its waiter. The same lock keeps two starts
/// from overlapping: a fork made by [`ProcessMonitor::start`] never copies a process in
/// the middle of another thread's spawn.
impl ProcessMonitor for Reaper {
    fn start(&self, start: &mut dyn FnMut() -> io::Result<u32>) -> io::Result<u32> {
        let mut commands = self.commands.lock().unwrap();
        let pid = start()?;
        commands.insert(pid, None);
        Ok(pid)
    }

    /// Waits, off the loop, for the exit the loop reaps: never call it on the loop.
    fn wait(&self, pid: u32) -> io::Result<ExitStatus> {
        let mut commands = self.commands.lock().unwrap();
        loop {
            match commands.get(&pid) {
                None => {
                    return Err(io::Error::other(format!(
                        "pid {pid} was not started through the reaper"
                    )))
                }
                Some(Some(status)) => {
                    let status = *status;
                    commands.remove(&pid);
                    return Ok(status);
                }
                Some(None) => commands = self.command_ended.wait(commands).unwrap(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_and_signals() {
        // Wait statuses as the kernel encodes them: code << 8, or the signal number.
        assert_eq!(Exit::from_wait_status(1, 3 << 8).status, 3);
        assert_eq!(Exit::from_wait_status(1, 255 << 8).status, 255);
        assert_eq!(Exit::from_wait_status(1, libc::SIGKILL).status, 137);
        assert_eq!(Exit::from_wait_status(1, libc::SIGTERM).status, 143);
    }
}
