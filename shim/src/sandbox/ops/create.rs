//! CreateSandbox: the pod set up, all or nothing (see [`crate::sandbox::pod`]). The shim
//! serves one sandbox, in the bundle it was started in.

use crate::sandbox::pod::Pod;
use crate::sandbox::{spec, SandboxService};
use crate::task::error::{Result, ShimError};
use skiff_protos::sandbox::{CreateSandboxRequest, CreateSandboxResponse};
use std::path::PathBuf;

impl SandboxService {
    pub fn create(&self, req: CreateSandboxRequest) -> Result<CreateSandboxResponse> {
        crate::task::validate::id("sandbox id", &req.sandbox_id)
            .map_err(ShimError::InvalidArgument)?;
        let bundle = own_bundle(&req.bundle_path)?;
        let spec = spec::read(&req)?;
        let mut state = self.state();
        if state.shutdown.is_some() {
            return Err(ShimError::FailedPrecondition(
                "the shim is shutting down".into(),
            ));
        }
        if let Some(pod) = &state.pod {
            return Err(ShimError::AlreadyExists(format!(
                "this shim already serves sandbox {}",
                pod.id()
            )));
        }
        let pod = Pod::set_up(&req.sandbox_id, &bundle, spec)?;
        log::info!("sandbox {} created, pid {}", req.sandbox_id, pod.pid());
        state.pod = Some(pod);
        Ok(CreateSandboxResponse::new())
    }
}

/// The bundle a request names must be the one the shim was started in (its working
/// directory): the shim makes files and a mount there.
fn own_bundle(path: &str) -> Result<PathBuf> {
    crate::task::validate::bundle(path).map_err(ShimError::InvalidArgument)?;
    let own = std::env::current_dir()
        .and_then(std::fs::canonicalize)
        .map_err(|e| ShimError::internal("reading the shim's bundle directory", e))?;
    let asked = std::fs::canonicalize(path)
        .map_err(|e| ShimError::InvalidArgument(format!("bundle {path:?}: {e}")))?;
    if asked != own {
        return Err(ShimError::InvalidArgument(format!(
            "bundle {path:?} is not the shim's own ({})",
            own.display()
        )));
    }
    Ok(own)
}
