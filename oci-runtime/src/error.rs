//! What can go wrong when an OCI runtime does a shim's work, by kind: a caller decides
//! what a failure means from its variant, never from its text. The runtime's own words
//! are kept in every failure it explains, under the runtime's own name (`runc`, `crun`,
//! `libcontainer`).

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The runtime binary could not be started at all (missing, not executable).
    #[error("cannot run OCI runtime {binary:?}: {source}")]
    Spawn { binary: String, source: io::Error },
    /// The runtime has no container of this id.
    #[error(
        "{} {command} failed: container {id:?} does not exist",
        base_name(runtime)
    )]
    NotFound {
        runtime: String,
        command: &'static str,
        id: String,
    },
    /// The container's process has ended: it can no longer be signalled, paused or
    /// entered.
    #[error("{} {command} failed: {}", base_name(runtime), or_default(message, id))]
    NotRunning {
        runtime: String,
        command: &'static str,
        id: String,
        message: String,
    },
    /// The runtime ran and failed otherwise; `message` is its own explanation when it
    /// gave one, `status` the exit status of a runtime binary.
    #[error("{}", failed(runtime, command, message, *status))]
    Failed {
        runtime: String,
        command: &'static str,
        message: String,
        status: Option<i32>,
    },
    /// Talking to the runtime process failed (pipes, temporary files).
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
    /// The runtime printed something that is not what its documented output looks like.
    #[error("cannot read the output of {command}: {message}")]
    Parse {
        command: &'static str,
        message: String,
    },
    /// The runtime does not do this at all; `reason` says what to use instead.
    #[error("{runtime} does not support {command}: {reason}")]
    Unsupported {
        runtime: String,
        command: &'static str,
        reason: String,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

fn base_name(binary: &str) -> &str {
    binary.rsplit('/').next().unwrap_or(binary)
}

fn or_default(message: &str, id: &str) -> String {
    if message.is_empty() {
        format!("container {id:?} is not running")
    } else {
        message.to_string()
    }
}

fn failed(runtime: &str, command: &str, message: &str, status: Option<i32>) -> String {
    let prefix = format!("{} {command} failed: ", base_name(runtime));
    match (message.is_empty(), status) {
        (false, _) => format!("{prefix}{message}"),
        (true, Some(code)) => format!("{prefix}exit status {code}"),
        (true, None) => format!("{prefix}killed by a signal"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_without_message_names_the_status() {
        let e = Error::Failed {
            runtime: "crun".into(),
            command: "kill",
            message: String::new(),
            status: Some(2),
        };
        assert_eq!(e.to_string(), "crun kill failed: exit status 2");
    }

    #[test]
    fn kinds_say_what_happened() {
        let gone = Error::NotFound {
            runtime: "/usr/bin/runc".into(),
            command: "delete",
            id: "web".into(),
        };
        assert_eq!(
            gone.to_string(),
            "runc delete failed: container \"web\" does not exist"
        );
        let ended = Error::NotRunning {
            runtime: "runc".into(),
            command: "kill",
            id: "web".into(),
            message: String::new(),
        };
        assert_eq!(
            ended.to_string(),
            "runc kill failed: container \"web\" is not running"
        );
    }
}
