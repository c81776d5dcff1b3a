//! A container's cgroup: where it is (v1, hybrid or v2), its statistics, and a file
//! descriptor that becomes readable when its memory controller records an OOM kill.
//!
//! Statistics are returned in the metrics messages of containerd's cgroups library
//! (`io.containerd.cgroups.v1/v2.Metrics`), the format every consumer of shim stats reads.

mod discover;
mod metrics;
mod oom;
mod psi;
mod read;
mod v1;
mod v2;

pub use discover::Cgroup;
pub use metrics::Metrics;
pub use oom::OomWatch;
