//! ShutdownSandbox: the last call. The sandbox is stopped if it was not, its files,
//! links and cgroup are removed, and the shim exits (the loop ends once the holder is
//! reaped) and removes its socket. Refused while containers are left: they are served
//! by this shim and would be orphaned.

use crate::sandbox::SandboxService;
use crate::task::error::{Result, ShimError};
use skiff_protos::sandbox::{ShutdownSandboxRequest, ShutdownSandboxResponse};
use std::time::Instant;

impl SandboxService {
    pub fn shutdown(&self, req: ShutdownSandboxRequest) -> Result<ShutdownSandboxResponse> {
        let left = self.tasks.container_ids();
        if !left.is_empty() {
            return Err(ShimError::FailedPrecondition(format!(
                "sandbox {} still has containers: {}",
                req.sandbox_id,
                left.join(", ")
            )));
        }
        let mut state = self.state();
        match state.pod.as_mut() {
            Some(pod) if pod.id() == req.sandbox_id => {
                pod.stop();
                pod.remove();
            }
            Some(pod) => {
                return Err(ShimError::NotFound(format!(
                    "sandbox {:?} not found: this shim serves {}",
                    req.sandbox_id,
                    pod.id()
                )))
            }
            // CreateSandbox failed (and left nothing): the shim still goes.
            None => {}
        }
        log::info!("sandbox {} shut down", req.sandbox_id);
        state.shutdown.get_or_insert_with(Instant::now);
        Ok(ShutdownSandboxResponse::new())
    }
}
