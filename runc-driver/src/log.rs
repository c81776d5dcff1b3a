//! The OCI runtime's `--log-format json` log: one JSON object a line, with `level` and
//! `msg`. On failure the last error-level message is the runtime's explanation.

use serde::Deserialize;

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    level: String,
    #[serde(default)]
    msg: String,
}

/// The last `error` or `fatal` message in a JSON log. Lines that are not JSON (a runtime
/// that writes plain text, or a line cut short) count as error text themselves, so an
/// unexpected log still explains the failure.
pub fn last_error(log: &str) -> Option<String> {
    let mut last = None;
    for line in log.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match serde_json::from_str::<Entry>(line) {
            Ok(entry) => {
                if matches!(entry.level.as_str(), "error" | "fatal" | "panic") {
                    last = Some(entry.msg);
                }
            }
            Err(_) => last = Some(line.to_string()),
        }
    }
    last
}

/// A runtime's message without the "runc create failed: " or "exec failed: " it may
/// already start with: the error it goes into says which command of which runtime failed.
pub fn without_command_prefix(binary: &str, command: &str, message: &str) -> String {
    let message = message.trim();
    let name = binary.rsplit('/').next().unwrap_or(binary);
    let long = format!("{name} {command} failed: ");
    let short = format!("{command} failed: ");
    message
        .strip_prefix(&long)
        .or_else(|| message.strip_prefix(&short))
        .unwrap_or(message)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runcs_own_prefixes_are_not_repeated() {
        assert_eq!(
            without_command_prefix(
                "/usr/sbin/runc",
                "create",
                "runc create failed: exec: \"nope\": executable file not found in $PATH"
            ),
            "exec: \"nope\": executable file not found in $PATH"
        );
        assert_eq!(
            without_command_prefix(
                "runc",
                "exec",
                "exec failed: unable to start container process"
            ),
            "unable to start container process"
        );
        assert_eq!(
            without_command_prefix("crun", "kill", " no such process "),
            "no such process"
        );
    }

    #[test]
    fn takes_the_last_error_line() {
        let log = concat!(
            "{\"level\":\"warning\",\"msg\":\"cgroup v1 is deprecated\",\"time\":\"t\"}\n",
            "{\"level\":\"error\",\"msg\":\"first\",\"time\":\"t\"}\n",
            "{\"level\":\"error\",\"msg\":\"runc create failed: exec: \\\"nope\\\": executable file not found in $PATH\",\"time\":\"t\"}\n",
            "{\"level\":\"info\",\"msg\":\"later info\",\"time\":\"t\"}\n",
        );
        assert_eq!(
            last_error(log).as_deref(),
            Some("runc create failed: exec: \"nope\": executable file not found in $PATH")
        );
    }

    #[test]
    fn no_error_means_none() {
        assert_eq!(last_error("{\"level\":\"info\",\"msg\":\"ok\"}\n"), None);
        assert_eq!(last_error(""), None);
    }

    #[test]
    fn plain_text_counts_as_error() {
        assert_eq!(
            last_error("container not found\n").as_deref(),
            Some("container not found")
        );
    }
}
