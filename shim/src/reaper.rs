//! The shim is a subreaper: every process it starts (runtime commands, and the container
//! processes they leave behind) is reaped here, on SIGCHLD, with `waitpid(-1, WNOHANG)`.
//!
//! An exit goes to whoever registered the pid: a runtime command waiting through
//! [`ProcessMonitor`], or else the shim's exit handler, which may see a container
//! process's exit before the runtime command that started it has returned.

use runc_driver::ProcessMonitor;
use std::collections::HashMap;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex};
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

type Slot = Arc<(Mutex<Option<ExitStatus>>, Condvar)>;

pub struct Reaper {
    /// Runtime commands started through the monitor, waiting for their own exit.
    commands: Mutex<HashMap<u32, Slot>>,
    /// Every other exit goes here.
    exits: Mutex<Sender<Exit>>,
}

impl Reaper {
    /// Makes this process a subreaper and blocks SIGCHLD so that only the reaper thread
    /// receives it. Call before any other thread exists: threads inherit the mask.
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

    /// Starts the reaper thread. `exits` receives every exit no runtime command claims.
    pub fn start(exits: Sender<Exit>) -> io::Result<Arc<Reaper>> {
        let reaper = Arc::new(Reaper {
            commands: Mutex::new(HashMap::new()),
            exits: Mutex::new(exits),
        });
        let fd = signalfd_for_sigchld()?;
        let r = reaper.clone();
        std::thread::Builder::new()
            .name("reaper".into())
            .spawn(move || r.run(fd))?;
        Ok(reaper)
    }

    fn run(&self, fd: std::os::fd::OwnedFd) {
        use std::os::fd::AsRawFd;
        let mut info = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
        loop {
            // One read may stand for several SIGCHLDs: reap until nothing is left.
            self.reap_all();
            // SAFETY: reading into a buffer of the right size from our signalfd.
            let n = unsafe { libc::read(fd.as_raw_fd(), info.as_mut_ptr().cast(), info.len()) };
            if n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                log::error!(
                    "reading the SIGCHLD signalfd: {}",
                    io::Error::last_os_error()
                );
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    }

    fn reap_all(&self) {
        loop {
            let mut raw = 0;
            // SAFETY: waitpid with a valid out pointer.
            let pid = unsafe { libc::waitpid(-1, &mut raw, libc::WNOHANG) };
            if pid <= 0 {
                return;
            }
            self.dispatch(pid as u32, raw);
        }
    }

    fn dispatch(&self, pid: u32, raw: i32) {
        let commands = self.commands.lock().unwrap();
        if let Some(slot) = commands.get(&pid) {
            *slot.0.lock().unwrap() = Some(ExitStatus::from_raw(raw));
            slot.1.notify_all();
            return;
        }
        drop(commands);
        let _ = self
            .exits
            .lock()
            .unwrap()
            .send(Exit::from_wait_status(pid, raw));
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

fn signalfd_for_sigchld() -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: building a signal set and creating a signalfd for it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(std::os::fd::OwnedFd::from_raw_fd(fd))
    }
}

/// Runtime commands are registered under the same lock the reaper takes before it
/// routes an exit, so a command that ends at once is still routed to its waiter.
impl ProcessMonitor for Reaper {
    fn spawn(&self, cmd: &mut Command) -> io::Result<Child> {
        let mut commands = self.commands.lock().unwrap();
        let child = cmd.spawn()?;
        commands.insert(child.id(), Arc::new((Mutex::new(None), Condvar::new())));
        Ok(child)
    }

    fn wait(&self, child: &mut Child) -> io::Result<ExitStatus> {
        let pid = child.id();
        let slot = self
            .commands
            .lock()
            .unwrap()
            .get(&pid)
            .cloned()
            .ok_or_else(|| io::Error::other(format!("pid {pid} was not started by the reaper")))?;
        let mut status = slot.0.lock().unwrap();
        while status.is_none() {
            status = slot.1.wait(status).unwrap();
        }
        let result = status.take().expect("checked above");
        drop(status);
        self.commands.lock().unwrap().remove(&pid);
        Ok(result)
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
