//! What a shim asks of an OCI runtime, whoever does the work: the operations
//! ([`OciRuntime`]), their options, the state a runtime reports, and its errors by kind.
//! `runc-driver` implements it by running a runtime binary per operation (runc, crun);
//! `youki-driver` in-process with youki's libcontainer. Both start processes through a
//! [`ProcessMonitor`], so that a subreaping shim routes their exits back, and hand a
//! terminal's pty master over a [`ConsoleSocket`].

mod console;
mod error;
mod monitor;
mod options;
mod runtime;
mod state;

pub use console::ConsoleSocket;
pub use error::{Error, Result};
pub use monitor::{DirectMonitor, ProcessMonitor};
pub use options::{CheckpointOptions, CreateOptions, DeleteOptions, ExecOptions, KillOptions};
pub use runtime::{OciRuntime, Stdio3};
pub use state::{ContainerState, ProcessList};
