//! The OCI runtime's work done with youki's libcontainer instead of a runtime binary:
//! [`Libcontainer`] implements skiff-oci-runtime's `OciRuntime` over one state root, so a
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
mod report;
mod state_file;

pub use ops::Libcontainer;
pub use report::NAME;
