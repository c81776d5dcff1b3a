//! SandboxStatus, PingSandbox and SandboxMetrics.

use crate::events::timestamp;
use crate::sandbox::pod::Phase;
use crate::sandbox::{cgroup, SandboxService};
use crate::task::error::{Result, ShimError};
use protobuf::MessageField;
use skiff_protos::metrics::Metric;
use skiff_protos::sandbox::{
    PingRequest, PingResponse, SandboxMetricsRequest, SandboxMetricsResponse, SandboxStatusRequest,
    SandboxStatusResponse,
};
use std::collections::HashMap;
use std::time::SystemTime;

/// The CRI's PodSandboxState names, which it reads from `state`.
const READY: &str = "SANDBOX_READY";
const NOT_READY: &str = "SANDBOX_NOTREADY";

impl SandboxService {
    pub fn status(&self, req: SandboxStatusRequest) -> Result<SandboxStatusResponse> {
        self.with_pod(&req.sandbox_id, |pod| {
            // Asked before every container is created, and after containerd restarts
            // (when the CRI removed the links to the pod's files).
            pod.relink_files();
            let exited = match pod.phase() {
                Phase::Stopped(exit) => Some(exit.at),
                _ => None,
            };
            let mut info = HashMap::new();
            if req.verbose {
                let spec = pod.spec();
                let detail = serde_json::json!({
                    "pid": pod.pid(),
                    "sharedPidNamespace": spec.shared_pid,
                    "netNamespacePath": spec.netns.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
                    "runtimeHandler": "",
                });
                info.insert("info".to_string(), detail.to_string());
            }
            Ok(SandboxStatusResponse {
                sandbox_id: pod.id().to_string(),
                pid: pod.pid(),
                state: if pod.phase() == Phase::Ready { READY } else { NOT_READY }.into(),
                info,
                created_at: MessageField::some(timestamp(pod.created_at())),
                exited_at: MessageField::from_option(exited.map(timestamp)),
                ..Default::default()
            })
        })
    }

    pub fn ping(&self, req: PingRequest) -> Result<PingResponse> {
        self.with_pod(&req.sandbox_id, |_| Ok(PingResponse::new()))
    }

    /// The pod's cgroup's figures (its parent's, which hold every container's), else
    /// the holder's.
    pub fn metrics(&self, req: SandboxMetricsRequest) -> Result<SandboxMetricsResponse> {
        let found = self.with_pod(&req.sandbox_id, |pod| {
            Ok(cgroup::of_parent(&pod.spec().cgroup_parent).or_else(|| {
                (pod.pid() != std::process::id() && pod.pid() != 0)
                    .then(|| skiff_cgroups::Cgroup::of_pid(pod.pid()).ok())
                    .flatten()
            }))
        })?;
        let cgroup = found.ok_or_else(|| {
            ShimError::NotFound(format!(
                "sandbox {} has no cgroup of its own to read",
                req.sandbox_id
            ))
        })?;
        let data =
            (cgroup.metrics().to_any()).map_err(|e| ShimError::internal("encoding metrics", e))?;
        Ok(SandboxMetricsResponse {
            metrics: MessageField::some(Metric {
                timestamp: MessageField::some(timestamp(SystemTime::now())),
                id: req.sandbox_id,
                data: MessageField::some(data),
                ..Default::default()
            }),
            ..Default::default()
        })
    }
}
