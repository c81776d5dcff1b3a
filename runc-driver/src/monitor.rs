use std::io;
use std::process::{Child, Command, ExitStatus};

/// Starts runtime commands and waits for them. A shim that reaps every child itself
/// (a subreaper calling `waitpid(-1)`) must not let `Child::wait` race its reaper, so it
/// supplies its own monitor that registers the child before the reaper can see it exit.
pub trait ProcessMonitor: Send + Sync {
    fn spawn(&self, cmd: &mut Command) -> io::Result<Child>;
    fn wait(&self, child: &mut Child) -> io::Result<ExitStatus>;
}

/// Waits with `waitpid` on the child itself: for programs that do not reap on their own.
#[derive(Debug, Default, Clone, Copy)]
pub struct DirectMonitor;

impl ProcessMonitor for DirectMonitor {
    fn spawn(&self, cmd: &mut Command) -> io::Result<Child> {
        cmd.spawn()
    }

    fn wait(&self, child: &mut Child) -> io::Result<ExitStatus> {
        child.wait()
    }
}
