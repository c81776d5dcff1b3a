//! How this driver reports a failure: under its own name, with libcontainer's error and
//! its causes as the message.

use skiff_oci_runtime::Error;

/// The name in every message of this driver.
pub const NAME: &str = "libcontainer";

/// An operation that failed, with libcontainer's own message.
pub(crate) fn failed(command: &'static str, message: impl Into<String>) -> Error {
    Error::Failed {
        runtime: NAME.into(),
        command,
        message: message.into(),
        status: None,
    }
}

/// libcontainer's error with its causes, outermost first.
pub(crate) fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}
