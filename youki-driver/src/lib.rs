//! The OCI runtime's work done with youki's libcontainer instead of a runtime binary:
//! [`Libcontainer`] implements runc-driver's [`OciRuntime`] over one state root, so a
//! shim drives it exactly as it drives runc. Like runc-driver it knows nothing of
//! containerd.
//!
//! Creating and exec'ing run in a forked copy of the caller ([`helper`]); the other
//! operations (start, kill, delete, pause, resume, state, ps, update) run in the caller,
//! those that save the container's state one at a time ([`state_file`]).
//! Checkpoint and restore are refused: libcontainer's CRIU support is not built in.

mod devices_v2;
mod executor;
mod features;
mod helper;
mod hybrid;
mod ops;
mod refusals;
mod state_file;

pub use ops::Libcontainer;

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

/// libcontainer reads the working directory to return to it after binding its sockets.
/// A pod's shim works in its first container's bundle, which is gone once that container
/// is deleted: then "/" stands in, as nothing relative can resolve there any more.
pub(crate) fn ensure_cwd() {
    if std::env::current_dir().is_err() {
        let _ = std::env::set_current_dir("/");
    }
}
