use std::fmt;
use std::io;

/// What can go wrong when driving an OCI runtime.
#[derive(Debug)]
pub enum Error {
    /// The runtime binary could not be started at all (missing, not executable).
    Spawn { binary: String, source: io::Error },
    /// The runtime ran and failed; `message` is its own explanation when it gave one.
    Failed {
        binary: String,
        command: &'static str,
        message: String,
        status: Option<i32>,
    },
    /// Talking to the runtime process failed (pipes, temporary files).
    Io { context: String, source: io::Error },
    /// The runtime printed something that is not what its documented output looks like.
    Parse {
        command: &'static str,
        message: String,
    },
    /// The runtime does not do this at all; `reason` says what to use instead.
    Unsupported {
        runtime: String,
        command: &'static str,
        reason: String,
    },
}

impl Error {
    /// The runtime's own message for a failed command, if that is what this is.
    pub fn runtime_message(&self) -> Option<&str> {
        match self {
            Error::Failed { message, .. } => Some(message),
            _ => None,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Spawn { binary, source } => {
                write!(f, "cannot run OCI runtime {binary:?}: {source}")
            }
            Error::Failed {
                binary,
                command,
                message,
                status,
            } => {
                let name = base_name(binary);
                // runc already prefixes some messages with "runc create failed: " and
                // others with "exec failed: ".
                let prefix = format!("{name} {command} failed: ");
                let short = format!("{command} failed: ");
                let message = message
                    .strip_prefix(&prefix)
                    .or_else(|| message.strip_prefix(&short))
                    .unwrap_or(message);
                if message.is_empty() {
                    match status {
                        Some(code) => write!(f, "{prefix}exit status {code}"),
                        None => write!(f, "{prefix}killed by a signal"),
                    }
                } else {
                    write!(f, "{prefix}{message}")
                }
            }
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::Parse { command, message } => {
                write!(f, "cannot read the output of {command}: {message}")
            }
            Error::Unsupported {
                runtime,
                command,
                reason,
            } => write!(f, "{runtime} does not support {command}: {reason}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Spawn { source, .. } | Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn base_name(binary: &str) -> &str {
    binary.rsplit('/').next().unwrap_or(binary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_message_is_not_prefixed_twice() {
        let e = Error::Failed {
            binary: "/usr/sbin/runc".into(),
            command: "create",
            message: "runc create failed: exec: \"nope\": executable file not found in $PATH"
                .into(),
            status: Some(1),
        };
        assert_eq!(
            e.to_string(),
            "runc create failed: exec: \"nope\": executable file not found in $PATH"
        );
    }

    #[test]
    fn runcs_short_prefix_is_not_repeated() {
        let e = Error::Failed {
            binary: "runc".into(),
            command: "exec",
            message: "exec failed: unable to start container process".into(),
            status: Some(1),
        };
        assert_eq!(
            e.to_string(),
            "runc exec failed: unable to start container process"
        );
    }

    #[test]
    fn failed_without_message_names_the_status() {
        let e = Error::Failed {
            binary: "crun".into(),
            command: "kill",
            message: String::new(),
            status: Some(2),
        };
        assert_eq!(e.to_string(), "crun kill failed: exit status 2");
    }
}
