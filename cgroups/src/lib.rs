//! A container's cgroup: where it is (v1, hybrid or v2), its statistics, and a file
//! descriptor that becomes readable when its memory controller records an OOM kill.
//!
//! Statistics are returned in the metrics messages of containerd's cgroups library
//! (`io.containerd.cgroups.v1/v2.Metrics`), the format every consumer of shim stats reads.

mod discover;
mod oom;
mod psi;
mod read;
mod v1;
mod v2;

pub use discover::Cgroup;
pub use oom::OomWatch;

/// Statistics of one cgroup, in the form of its hierarchy.
#[derive(Debug, Clone, PartialEq)]
pub enum Metrics {
    V1(skiff_protos::metrics_v1::Metrics),
    V2(skiff_protos::metrics_v2::Metrics),
}
