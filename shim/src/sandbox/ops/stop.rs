//! StopSandbox and WaitSandbox. containerd's CRI stops the pod's containers first and
//! kills a pause container outright; the sandbox's end is what WaitSandbox reports, and
//! the CRI marks the pod not ready when it does.

use crate::events::timestamp;
use crate::sandbox::pod::Phase;
use crate::sandbox::SandboxService;
use crate::task::error::Result;
use protobuf::MessageField;
use skiff_protos::sandbox::{
    StopSandboxRequest, StopSandboxResponse, WaitSandboxRequest, WaitSandboxResponse,
};

impl SandboxService {
    pub fn stop(&self, req: StopSandboxRequest) -> Result<StopSandboxResponse> {
        self.with_pod(&req.sandbox_id, |pod| {
            pod.stop();
            Ok(StopSandboxResponse::new())
        })
    }

    /// WaitSandbox without blocking: None while the sandbox lives (the server parks the
    /// request and asks again after reaping).
    pub fn try_wait(&self, req: &WaitSandboxRequest) -> Result<Option<WaitSandboxResponse>> {
        self.with_pod(&req.sandbox_id, |pod| match pod.phase() {
            Phase::Stopped(exit) => Ok(Some(WaitSandboxResponse {
                exit_status: exit.status,
                exited_at: MessageField::some(timestamp(exit.at)),
                ..Default::default()
            })),
            _ => Ok(None),
        })
    }
}
