//! The container's standard streams. The shim holds the container's ends of pipes (or
//! the master of its pty) and copies between them and the manager's FIFOs, so the
//! container does not depend on the manager being there: its output waits in the shim
//! while containerd restarts.
//!
//! The copies' parts are public for the pumps' model test and fuzz target
//! (`shim/tests/pump_model.rs`, `fuzz/fuzz_targets/pump_model.rs`).

pub mod fifo;
pub mod file_sink;
mod logger;
mod process_io;
pub mod pump;
pub mod transfer;
mod trusted_path;
mod uri;

pub use process_io::{Owner, ProcessIo, StreamPaths};
pub use pump::Pumps;
pub use transfer::Transfer;

/// Checks an output path or log URI as a Create or Exec names it.
pub fn check_output(s: &str) -> Result<(), String> {
    uri::parse(s).map(drop)
}

/// An output FIFO opened as the shim opens one, for the pumps' tests.
#[cfg(test)]
pub(crate) fn fifo_output_for_tests(path: &std::path::Path) -> std::os::fd::OwnedFd {
    fifo::open_output(path).unwrap()
}
