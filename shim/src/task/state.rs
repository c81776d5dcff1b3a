use skiff_protos::task::Status as WireStatus;
use std::fmt;

/// Where a process is in its life: created by the runtime, running, frozen, exited, and
/// finally deleted (its runtime state and streams released).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
    Deleted,
}

/// The transitions a request may make. Stopped is reached only by an exit, which is
/// recorded from any live state without asking.
pub fn allowed(from: Status, to: Status) -> bool {
    use Status::*;
    matches!(
        (from, to),
        (Created, Running)
            | (Running, Paused)
            | (Paused, Running)
            | (Created, Deleted)
            | (Stopped, Deleted)
    )
}

pub fn verb(to: Status) -> &'static str {
    match to {
        Status::Created => "create it",
        Status::Running => "start or resume it",
        Status::Paused => "pause it",
        Status::Stopped => "stop it",
        Status::Deleted => "delete it",
    }
}

impl Status {
    pub fn wire(self) -> WireStatus {
        match self {
            Status::Created => WireStatus::CREATED,
            Status::Running => WireStatus::RUNNING,
            Status::Paused => WireStatus::PAUSED,
            Status::Stopped | Status::Deleted => WireStatus::STOPPED,
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
    use super::*;
    use Status::*;

    #[test]
    fn life_cycle() {
        assert!(allowed(Created, Running));
        assert!(allowed(Running, Paused));
        assert!(allowed(Paused, Running));
        assert!(allowed(Stopped, Deleted));
        assert!(allowed(Created, Deleted));
        assert!(
            !allowed(Running, Deleted),
            "a running process is not deleted"
        );
        assert!(!allowed(Paused, Deleted));
        assert!(!allowed(Stopped, Running), "no restart");
        assert!(!allowed(Created, Paused));
        assert!(!allowed(Deleted, Running));
        assert!(!allowed(Running, Running), "start twice");
    }
}
