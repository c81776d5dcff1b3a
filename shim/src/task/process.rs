//! A container's processes: its init and the ones added by Exec. Each moves through an
//! explicit life cycle ([`Status`]); every transition is checked in one place.

pub use crate::task::state::Status;

use crate::stdio::{ProcessIo, StreamPaths};
use crate::sys::reaper::Exit;
use crate::task::error::{Result, ShimError};

pub struct Process {
    /// None for the container's init process.
    pub exec_id: Option<String>,
    /// 0 until the runtime has started it (an exec before Start).
    pub pid: u32,
    pub status: Status,
    pub exit: Option<Exit>,
    pub paths: StreamPaths,
    /// The streams; None before an exec starts, and after the process is deleted.
    pub io: Option<ProcessIo>,
    /// An exec's OCI process document (JSON), until it is started.
    pub exec_spec: Option<Vec<u8>>,
    /// An init created from a checkpoint: the runtime restores it at Start, handing it
    /// these streams.
    pub restore: Option<Restore>,
}

pub struct Restore {
    pub image_path: String,
    pub work_path: Option<String>,
    pub stdio: runc_driver::Stdio3,
}

impl Process {
    /// The container's init process, created by the runtime as `pid`.
    pub fn init(pid: u32, io: ProcessIo) -> Process {
        Process {
            exec_id: None,
            pid,
            status: Status::Created,
            exit: None,
            paths: io.paths.clone(),
            io: Some(io),
            exec_spec: None,
            restore: None,
        }
    }

    /// An exec process as Exec adds it: described, not yet started.
    pub fn exec(exec_id: String, paths: StreamPaths, spec: Vec<u8>) -> Process {
        Process {
            exec_id: Some(exec_id),
            pid: 0,
            status: Status::Created,
            exit: None,
            paths,
            io: None,
            exec_spec: Some(spec),
            restore: None,
        }
    }

    /// What to call this process in messages.
    pub fn name(&self) -> String {
        match &self.exec_id {
            Some(e) => format!("exec {e}"),
            None => "init process".to_string(),
        }
    }

    pub fn transition(&mut self, to: Status) -> Result<()> {
        let from = self.status;
        if crate::task::state::allowed(from, to) {
            self.status = to;
            return Ok(());
        }
        Err(ShimError::FailedPrecondition(format!(
            "{} is {}: cannot {}",
            self.name(),
            from,
            crate::task::state::verb(to)
        )))
    }

    /// Records the exit. Exits are facts: they are recorded from any live state.
    pub fn set_exited(&mut self, exit: Exit) {
        if self.status != Status::Deleted {
            self.status = Status::Stopped;
            self.exit = Some(exit);
        }
    }

    /// Whether signals can still reach it.
    pub fn ensure_signalable(&self) -> Result<()> {
        match self.status {
            Status::Created | Status::Running | Status::Paused => Ok(()),
            Status::Stopped | Status::Deleted => Err(ShimError::NotFound(format!(
                "{} {}: process already finished",
                self.name(),
                self.pid
            ))),
        }
    }
}
