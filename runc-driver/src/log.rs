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

#[cfg(test)]
mod tests {
    use super::*;

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
