//! The shim is a subreaper: every process it starts (runtime commands, and the container
//! processes they leave behind) is reaped here with `waitpid(-1, WNOHANG)`, when the
//! event loop sees SIGCHLD on the reaper's signalfd.
//!
//! A runtime command is waited for by the thread that ran it, which reaps in its place
//! until its own command has ended; exits it reaps on the way are queued for the loop.
//! So a container process's exit may be seen before the runtime command that started it
//! has returned, and the exit handler keeps such exits until their pid is claimed.

use runc_driver::ProcessMonitor;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// A process that ended, as the reaper saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub pid: u32,
    /// The exit code, or 128 + the signal that killed it (the shell's convention, which
    /// containerd reports).
    pub status: u32,
    pub at: SystemTime,
}

impl Exit {
    pub fn from_wait_status(pid: u32, raw: i32) -> Exit {
        let status = if libc::WIFEXITED(raw) {
            libc::WEXITSTATUS(raw) as u32
        } else if libc::WIFSIGNALED(raw) {
            128 + libc::WTERMSIG(raw) as u32
        } else {
            raw as u32
        };
        Exit {
            pid,
            status,
            at: SystemTime::now(),
        }
    }
}

pub struct Reaper {
    signalfd: OwnedFd,
    /// Runtime commands started through the monitor, and their exit once reaped.
    commands: Mutex<HashMap<u32, Option<ExitStatus>>>,
    /// Exits no runtime command claimed, for the loop to hand to the exit handler.
    exits: Mutex<VecDeque<Exit>>,
}

impl Reaper {
    /// Makes this process a subreaper and blocks SIGCHLD so that it is only seen
    /// through the reaper's signalfd. Call before any other thread exists: threads
    /// inherit the mask.
    pub fn prepare_process() -> io::Result<()> {
        reset_inherited_ignores();
        // SAFETY: plain syscalls on this process's own attributes.
        unsafe {
            if libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGCHLD);
            let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc));
            }
        }
        Ok(())
    }

    pub fn new() -> io::Result<Arc<Reaper>> {
        Ok(Arc::new(Reaper {
            signalfd: signalfd_for_sigchld()?,
            commands: Mutex::new(HashMap::new()),
            exits: Mutex::new(VecDeque::new()),
        }))
    }

    /// Readable when SIGCHLD is pending: the loop then calls [`Reaper::take_exits`].
    pub fn fd(&self) -> RawFd {
        self.signalfd.as_raw_fd()
    }

    /// Reaps every child that has ended and returns the exits no runtime command
    /// claimed, oldest first.
    pub fn take_exits(&self) -> Vec<Exit> {
        // Consume the pending signal first: a child that ends after this read signals
        // again, so none is left unreaped with nothing to wake the loop.
        let mut info = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
        loop {
            // SAFETY: reading into a buffer of the right size from our signalfd.
            let n = unsafe {
                libc::read(
                    self.signalfd.as_raw_fd(),
                    info.as_mut_ptr().cast(),
                    info.len(),
                )
            };
            if n <= 0 {
                break;
            }
        }
        while let Some((pid, raw)) = reap(libc::WNOHANG) {
            self.dispatch(pid, raw);
        }
        self.exits.lock().unwrap().drain(..).collect()
    }

    fn dispatch(&self, pid: u32, raw: i32) {
        let mut commands = self.commands.lock().unwrap();
        if let Some(slot) = commands.get_mut(&pid) {
            *slot = Some(ExitStatus::from_raw(raw));
            return;
        }
        drop(commands);
        self.exits
            .lock()
            .unwrap()
            .push_back(Exit::from_wait_status(pid, raw));
    }
}

/// One `waitpid(-1)`: Some((pid, status)) or None when nothing (more) has ended.
fn reap(flags: i32) -> Option<(u32, i32)> {
    loop {
        let mut raw = 0;
        // SAFETY: waitpid with a valid out pointer.
        let pid = unsafe { libc::waitpid(-1, &mut raw, flags) };
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
    // SAFETY: setting the calling thread's mask to an empty set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        let rc = libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
    }
    Ok(())
}

fn signalfd_for_sigchld() -> io::Result<OwnedFd> {
    // SAFETY: building a signal set and creating a signalfd for it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Runtime commands are registered under the lock the reaper takes before it routes
/// an exit, so a command that ends at once is still routed to its waiter.
impl ProcessMonitor for Reaper {
    fn spawn(&self, cmd: &mut Command) -> io::Result<Child> {
        let mut commands = self.commands.lock().unwrap();
        let child = cmd.spawn()?;
        commands.insert(child.id(), None);
        Ok(child)
    }

    /// Reaps, blocking, until the command has ended: other exits met on the way are
    /// queued for the loop.
    fn wait(&self, child: &mut Child) -> io::Result<ExitStatus> {
        let pid = child.id();
        loop {
            {
                let mut commands = self.commands.lock().unwrap();
                match commands.get(&pid) {
                    None => {
                        return Err(io::Error::other(format!(
                            "pid {pid} was not started by the reaper"
                        )))
                    }
                    Some(Some(status)) => {
                        let status = *status;
                        commands.remove(&pid);
                        return Ok(status);
                    }
                    Some(None) => {}
                }
            }
            match reap(0) {
                Some((reaped, raw)) => self.dispatch(reaped, raw),
                None => return Err(io::Error::last_os_error()),
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
