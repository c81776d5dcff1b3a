//! Who waits for the processes a runtime operation starts. A shim that is a subreaper
//! reaps every child itself (`waitpid(-1)` on its event loop) and must route each
//! runtime command's exit back to the thread that waits for it, so process starts go
//! through a monitor that records the pid before the reaper can see it exit.

use std::io;
use std::process::ExitStatus;

pub trait ProcessMonitor: Send + Sync {
    /// Runs `start`, which starts one process (a spawn, or a fork) and returns its pid,
    /// such that the process's exit is kept for [`ProcessMonitor::wait`]. A monitor may
    /// hold a lock of its own around `start`: no process of the caller starts meanwhile.
    fn start(&self, start: &mut dyn FnMut() -> io::Result<u32>) -> io::Result<u32>;

    /// Waits until a process `start` started has ended.
    fn wait(&self, pid: u32) -> io::Result<ExitStatus>;
}

/// Waits with `waitpid` on the child itself: for programs that do not reap on their own.
#[derive(Debug, Default, Clone, Copy)]
pub struct DirectMonitor;

impl ProcessMonitor for DirectMonitor {
    fn start(&self, start: &mut dyn FnMut() -> io::Result<u32>) -> io::Result<u32> {
        start()
    }

    fn wait(&self, pid: u32) -> io::Result<ExitStatus> {
        use std::os::unix::process::ExitStatusExt;
        let pid = pid as libc::pid_t;
        loop {
            let mut raw = 0;
            // SAFETY: waitpid on our own child, into a local.
            let rc = unsafe { libc::waitpid(pid, &mut raw, 0) };
            if rc == pid {
                return Ok(ExitStatus::from_raw(raw));
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
}
