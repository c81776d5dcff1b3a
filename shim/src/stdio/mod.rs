//! The container's standard streams. The shim holds the container's ends of pipes (or
//! the master of its pty) and copies between them and the manager's FIFOs, so the
//! container does not depend on the manager being there: its output waits in the shim
//! while containerd restarts.

mod copy;
mod fifo;
mod logger;
mod pump;
mod uri;

pub use copy::{Owner, ProcessIo, StreamPaths};
pub use pump::{Pumps, TOKEN as PUMP_TOKEN};

/// Checks an output path or log URI as a Create or Exec names it.
pub fn check_output(s: &str) -> Result<(), String> {
    uri::parse(s).map(drop)
}
