//! Statistics of one cgroup, in the message of its hierarchy's version.

/// Statistics of one cgroup, in the form of its hierarchy.
#[derive(Debug, Clone, PartialEq)]
pub enum Metrics {
    V1(skiff_protos::metrics_v1::Metrics),
    V2(skiff_protos::metrics_v2::Metrics),
}
