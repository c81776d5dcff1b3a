//! One process of a container: its init, or one added by Exec. It owns its streams, its
//! status (changed only through the state machine of [`crate::task::state`]) and its
//! exit, and it decides what may be asked of it.

use crate::stdio::{ProcessIo, StreamPaths};
use crate::sys::reaper::Exit;
use crate::task::error::{Result, ShimError};
use crate::task::state::{Event, Status};

pub struct Process {
    /// None for the container's init process.
    exec_id: Option<String>,
    /// 0 until the runtime has started it (an exec before Start).
    pid: u32,
    status: Status,
    exit: Option<Exit>,
    /// The exit has been published: Wait may answer.
    reported: bool,
    paths: StreamPaths,
    /// The streams; None before an exec starts, and after the process is deleted.
    io: Option<ProcessIo>,
    /// What Start needs and has not had yet: an exec's process document, or the
    /// checkpoint an init is restored from.
    pending_start: Option<StartWith>,
    /// A runtime command that starts the process is in flight.
    starting: bool,
}

/// What a Start does for a process that is not running yet.
pub enum StartWith {
    /// `runtime start` of a created init.
    Created,
    /// `runtime exec` with this OCI process document (JSON).
    Exec(Vec<u8>),
    /// `runtime restore` from a checkpoint, with the streams made at Create.
    Restore(Restore),
}

pub struct Restore {
    pub image_path: String,
    pub work_path: Option<String>,
    pub stdio: skiff_oci_runtime::Stdio3,
}

impl Process {
    /// The container's init process, created by the runtime as `pid`.
    pub fn init(pid: u32, io: ProcessIo) -> Process {
        Process::new(None, pid, io.paths.clone(), Some(io), StartWith::Created)
    }

    /// An init to be restored from a checkpoint at Start.
    pub fn restoring(io: ProcessIo, restore: Restore) -> Process {
        let paths = io.paths.clone();
        Process::new(None, 0, paths, Some(io), StartWith::Restore(restore))
    }

    /// An exec process as Exec adds it: described, not yet started.
    pub fn exec(exec_id: String, paths: StreamPaths, spec: Vec<u8>) -> Process {
        Process::new(Some(exec_id), 0, paths, None, StartWith::Exec(spec))
    }

    fn new(
        exec_id: Option<String>,
        pid: u32,
        paths: StreamPaths,
        io: Option<ProcessIo>,
        start: StartWith,
    ) -> Process {
        Process {
            exec_id,
            pid,
            status: Status::Created,
            exit: None,
            reported: false,
            paths,
            io,
            pending_start: Some(start),
            starting: false,
        }
    }

    pub fn exec_id(&self) -> Option<&str> {
        self.exec_id.as_deref()
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn status(&self) -> Status {
        self.status
    }

    pub fn exit(&self) -> Option<Exit> {
        self.exit
    }

    pub fn paths(&self) -> &StreamPaths {
        &self.paths
    }

    /// What to call this process in messages.
    pub fn name(&self) -> String {
        match &self.exec_id {
            Some(e) => format!("exec {e}"),
            None => "init process".to_string(),
        }
    }

    /// The only place a status changes.
    fn apply(&mut self, event: Event) -> Result<()> {
        self.status = self
            .status
            .after(event)
            .ok_or_else(|| self.refusal(event))?;
        Ok(())
    }

    /// Whether `event` may happen now, without making it happen. A process being started
    /// is not started again, nor deleted: the runtime command may yet make it run, and
    /// then it must have an owner that Kill and Wait reach.
    pub fn check(&self, event: Event) -> Result<()> {
        if self.starting && event == Event::Start {
            return Err(ShimError::FailedPrecondition(format!(
                "{} is already being started",
                self.name()
            )));
        }
        if self.starting && event == Event::Delete {
            return Err(ShimError::FailedPrecondition(format!(
                "{} is being started: cannot delete it until its start has ended (kill it, then delete it once it has exited)",
                self.name()
            )));
        }
        self.status
            .after(event)
            .map(drop)
            .ok_or_else(|| self.refusal(event))
    }

    fn refusal(&self, event: Event) -> ShimError {
        ShimError::FailedPrecondition(format!(
            "{} is {}: cannot {}",
            self.name(),
            self.status,
            event.verb()
        ))
    }

    /// Begins a Start: the process is created and not being started; what the runtime
    /// command needs is handed out. Until [`Process::started`] or
    /// [`Process::start_failed`], its exit is not reported.
    pub fn begin_start(&mut self) -> Result<StartWith> {
        self.check(Event::Start)?;
        let with = self.pending_start.take().ok_or_else(|| {
            ShimError::FailedPrecondition(format!("{} has nothing to start", self.name()))
        })?;
        self.starting = true;
        Ok(with)
    }

    /// The runtime started it as `pid` (0: the pid it had), with these streams (an exec's).
    pub fn started(&mut self, pid: u32, io: Option<ProcessIo>) -> Result<()> {
        self.starting = false;
        if pid != 0 {
            self.pid = pid;
        }
        if io.is_some() {
            self.io = io;
        }
        match self.status {
            // It exited while its start was in flight: the exit is already recorded.
            Status::Stopped => Ok(()),
            _ => self.apply(Event::Start),
        }
    }

    /// The runtime failed to start it; it stays created, with what a later Start needs
    /// when the failed one could hand it back.
    pub fn start_failed(&mut self, retry: Option<StartWith>) {
        self.starting = false;
        if self.pending_start.is_none() {
            self.pending_start = retry;
        }
    }

    /// Whether a runtime command starting it is in flight.
    pub fn is_starting(&self) -> bool {
        self.starting
    }

    /// Records the exit, and closes the process's stdin: nothing more will be read.
    pub fn exited(&mut self, exit: Exit) {
        if self.apply(Event::Exit).is_ok() {
            self.exit = Some(exit);
            if let Some(io) = self.io.as_mut() {
                io.stop_stdin();
            }
        }
    }

    /// The exit was published: Wait answers from now on.
    pub fn exit_reported(&mut self) {
        self.reported = true;
    }

    pub fn paused(&mut self) -> Result<()> {
        self.apply(Event::Pause)
    }

    pub fn resumed(&mut self) -> Result<()> {
        self.apply(Event::Resume)
    }

    /// Deletes it: its streams are released; returns its exit (a process deleted before
    /// it ran reports status 0 now, as containerd's shims do).
    pub fn delete(&mut self) -> Result<Exit> {
        self.check(Event::Delete)?;
        self.apply(Event::Delete)?;
        self.io = None;
        Ok(self.exit.unwrap_or_else(|| Exit::now(self.pid, 0)))
    }

    /// Whether signals can still reach it: an exited process is NOT_FOUND.
    pub fn check_signalable(&self) -> Result<()> {
        if self.status.is_live() {
            return Ok(());
        }
        Err(ShimError::NotFound(format!(
            "{} {}: process already finished",
            self.name(),
            self.pid
        )))
    }

    /// Sends `signal` to a started exec. Only the loop reaps, and a process is marked
    /// exited when it is reaped: while it is live here its pid cannot have been reused.
    pub fn signal(&self, signal: u32) -> Result<()> {
        self.check_signalable()?;
        if self.pid == 0 {
            return Err(ShimError::FailedPrecondition(format!(
                "{} has not been started",
                self.name()
            )));
        }
        crate::sys::signal::send(self.pid, signal).map_err(|e| match e.raw_os_error() {
            Some(libc::ESRCH) => {
                ShimError::NotFound(format!("{}: process already finished", self.name()))
            }
            _ => ShimError::internal(format!("signalling {}", self.name()), e),
        })
    }

    /// The answer to Wait, once the exit has been reported.
    pub fn reported_exit(&self) -> Option<Exit> {
        match (self.status, self.reported) {
            (Status::Stopped | Status::Deleted, true) => self.exit,
            (Status::Deleted, false) => self.exit.or_else(|| Some(Exit::now(self.pid, 0))),
            _ => None,
        }
    }

    /// Whether its output has been copied to the end.
    pub fn output_drained(&self) -> bool {
        self.io.as_ref().is_none_or(|io| io.output_drained())
    }

    /// Closes its streams without a change of status: its container is gone.
    pub fn release_streams(&mut self) {
        self.io = None;
    }

    pub fn close_stdin(&mut self) {
        if let Some(io) = self.io.as_mut() {
            io.close_stdin();
        }
    }

    /// Sets its terminal's size; a process without a terminal has none to set, and that
    /// is no error (containerd's shims and clients treat it so).
    pub fn resize(&self, width: u32, height: u32) -> Result<()> {
        match self.io.as_ref().filter(|io| io.has_terminal()) {
            Some(io) => io
                .resize(width, height)
                .map_err(|e| ShimError::internal("resizing the terminal", e)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec() -> Process {
        Process::exec("e".into(), StreamPaths::default(), b"{}".to_vec())
    }

    #[test]
    fn an_exec_starts_once_and_reports_its_exit_once_published() {
        let mut p = exec();
        assert!(matches!(p.begin_start(), Ok(StartWith::Exec(_))));
        assert!(
            p.begin_start().is_err(),
            "a second start while one is in flight"
        );
        p.started(42, None).unwrap();
        assert_eq!((p.status(), p.pid()), (Status::Running, 42));
        p.exited(Exit::now(42, 3));
        assert_eq!(p.status(), Status::Stopped);
        assert!(p.reported_exit().is_none(), "not before it is published");
        p.exit_reported();
        assert_eq!(p.reported_exit().map(|e| e.status), Some(3));
        assert!(p.check_signalable().is_err());
        assert_eq!(p.delete().unwrap().status, 3);
    }

    #[test]
    fn an_exit_during_the_start_is_kept() {
        let mut p = exec();
        p.begin_start().unwrap();
        p.exited(Exit::now(0, 1));
        p.started(7, None).unwrap();
        assert_eq!(p.status(), Status::Stopped);
        assert_eq!(p.pid(), 7);
    }

    #[test]
    fn a_process_being_started_is_not_deleted() {
        let mut p = exec();
        p.begin_start().unwrap();
        let refused = p.delete().unwrap_err().to_string();
        assert!(refused.contains("exec e is being started"), "{refused}");
        assert_eq!(p.status(), Status::Created);
        p.start_failed(None);
        assert!(
            p.delete().is_ok(),
            "a start that failed leaves it deletable"
        );
    }

    #[test]
    fn a_running_process_is_not_deleted_and_a_resize_without_terminal_is_no_error() {
        let mut p = exec();
        p.begin_start().unwrap();
        p.started(5, None).unwrap();
        assert!(p.delete().is_err());
        assert!(p.resize(80, 24).is_ok());
        assert!(p.paused().is_ok());
        assert!(p.check(Event::Start).is_err());
        assert!(p.resumed().is_ok());
    }
}
