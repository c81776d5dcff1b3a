//! The container's standard streams. The shim holds the container's ends of pipes and
//! copies between them and the manager's FIFOs, so the container does not depend on the
//! manager being there: its output waits in the shim while containerd restarts.

mod copy;
mod fifo;

pub use copy::ProcessIo;
