//! A container's processes: its init and the ones added by Exec. Each moves through an
//! explicit life cycle ([`Status`]); every transition is checked in one place.

mod lifecycle;

pub use lifecycle::Status;

use crate::error::{Result, ShimError};
use crate::reaper::Exit;
use crate::stdio::ProcessIo;

pub struct Process {
    /// None for the container's init process.
    pub exec_id: Option<String>,
    pub pid: u32,
    pub status: Status,
    pub exit: Option<Exit>,
    pub terminal: bool,
    /// Taken (and so closed) when the process is deleted.
    pub io: Option<ProcessIo>,
}

impl Process {
    pub fn new(exec_id: Option<String>, pid: u32, terminal: bool, io: ProcessIo) -> Process {
        Process {
            exec_id,
            pid,
            status: Status::Created,
            exit: None,
            terminal,
            io: Some(io),
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
        if lifecycle::allowed(from, to) {
            self.status = to;
            return Ok(());
        }
        Err(ShimError::FailedPrecondition(format!(
            "{} is {}: cannot {}",
            self.name(),
            from,
            lifecycle::verb(to)
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
