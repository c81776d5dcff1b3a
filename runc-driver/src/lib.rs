//! A typed, synchronous wrapper of an OCI runtime's command line: `runc`, `crun` or
//! `youki`. It knows nothing of containerd: it builds argument lists, runs the binary,
//! and turns the runtime's JSON log into errors that carry the runtime's own words.
//!
//! Who waits for the runtime's child processes is pluggable ([`ProcessMonitor`]), because a
//! shim that is a subreaper reaps every child itself and must route the runtime's exit
//! back here.

mod args;
mod console;
mod error;
mod log;
mod monitor;
mod oci;
mod runtime;
mod state;

pub use args::{
    CheckpointOptions, CreateOptions, DeleteOptions, ExecOptions, GlobalOptions, KillOptions,
};
pub use console::ConsoleSocket;
pub use error::Error;
pub use log::last_error;
pub use monitor::{DirectMonitor, ProcessMonitor};
pub use oci::{OciRuntime, Stdio3};
pub use runtime::Runtime;
pub use state::{ContainerState, ProcessList};

pub type Result<T> = std::result::Result<T, Error>;
