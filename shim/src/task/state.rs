//! The life of a container process, as one table: created by the runtime, running,
//! frozen, exited, and finally deleted (its runtime state and streams released). Every
//! status change of a process is an [`Event`] applied through [`Status::after`].

use skiff_protos::task::Status as WireStatus;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
    Deleted,
}

/// What happens to a process: requests (start, pause, resume, delete) and the one fact
/// no request asks for, its exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Start,
    Pause,
    Resume,
    Exit,
    Delete,
}

impl Status {
    /// The status after `event`, or None when the event cannot happen now. An exit is
    /// a fact: it is taken from every live status.
    pub fn after(self, event: Event) -> Option<Status> {
        use Event::*;
        use Status::*;
        match (self, event) {
            (Created, Start) => Some(Running),
            (Running, Pause) => Some(Paused),
            (Paused, Resume) => Some(Running),
            (Created | Running | Paused, Exit) => Some(Stopped),
            (Created | Stopped, Delete) => Some(Deleted),
            _ => None,
        }
    }

    /// Whether signals can still reach the process.
    pub fn is_live(self) -> bool {
        matches!(self, Status::Created | Status::Running | Status::Paused)
    }

    pub fn wire(self) -> WireStatus {
        match self {
            Status::Created => WireStatus::CREATED,
            Status::Running => WireStatus::RUNNING,
            Status::Paused => WireStatus::PAUSED,
            Status::Stopped | Status::Deleted => WireStatus::STOPPED,
        }
    }
}

impl Event {
    /// What a refusal of the event says the caller cannot do.
    pub fn verb(self) -> &'static str {
        match self {
            Event::Start => "start it",
            Event::Pause => "pause it",
            Event::Resume => "resume it",
            Event::Exit => "stop it",
            Event::Delete => "delete it",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
            Status::Deleted => "deleted",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Event::*;
    use super::Status::*;

    #[test]
    fn life_cycle() {
        assert_eq!(Created.after(Start), Some(Running));
        assert_eq!(Running.after(Pause), Some(Paused));
        assert_eq!(Paused.after(Resume), Some(Running));
        assert_eq!(Stopped.after(Delete), Some(Deleted));
        assert_eq!(Created.after(Delete), Some(Deleted));
        assert_eq!(
            Running.after(Delete),
            None,
            "a running process is not deleted"
        );
        assert_eq!(Paused.after(Delete), None);
        assert_eq!(Stopped.after(Start), None, "no restart");
        assert_eq!(Created.after(Pause), None);
        assert_eq!(Deleted.after(Start), None);
        assert_eq!(Running.after(Start), None, "start twice");
    }

    #[test]
    fn an_exit_is_taken_from_every_live_status_only() {
        for live in [Created, Running, Paused] {
            assert_eq!(live.after(Exit), Some(Stopped));
            assert!(live.is_live());
        }
        assert_eq!(Stopped.after(Exit), None);
        assert_eq!(Deleted.after(Exit), None);
        assert!(!Stopped.is_live());
    }
}
