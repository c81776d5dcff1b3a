//! Statistics of one cgroup, in the message of its hierarchy's version.

/// Statistics of one cgroup, in the form of its hierarchy.
#[derive(Debug, Clone, PartialEq)]
pub enum Metrics {
    V1(skiff_protos::metrics_v1::Metrics),
    V2(skiff_protos::metrics_v2::Metrics),
}

impl Metrics {
    /// The metrics in an `Any`, as containerd takes them from a task's Stats and a
    /// sandbox's SandboxMetrics.
    pub fn to_any(&self) -> protobuf::Result<protobuf::well_known_types::any::Any> {
        use protobuf::Message;
        use skiff_protos::type_url;
        let (url, value) = match self {
            Metrics::V1(m) => (type_url::CGROUPS_V1_METRICS, m.write_to_bytes()?),
            Metrics::V2(m) => (type_url::CGROUPS_V2_METRICS, m.write_to_bytes()?),
        };
        Ok(protobuf::well_known_types::any::Any {
            type_url: url.into(),
            value,
            ..Default::default()
        })
    }
}
