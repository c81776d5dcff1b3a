//! Checkpoint: CRIU, through the runtime, writes the container's image; with `exit` in
//! the options the container then stops.

use crate::task::error::{Result, ShimError};
use crate::task::job::{later, Order, Reply};
use crate::task::state::Status;
use crate::task::{validate, TaskService};
use protobuf::well_known_types::empty::Empty;
use protobuf::Message;
use skiff_oci_runtime::CheckpointOptions;
use skiff_protos::options::CheckpointOptions as CheckpointOptionsMsg;
use skiff_protos::shim::CheckpointTaskRequest;

impl TaskService {
    pub fn checkpoint(&self, req: CheckpointTaskRequest) -> Reply<Empty> {
        let planned = self.plan_checkpoint(&req);
        let (c, opts) = match planned {
            Ok(planned) => planned,
            Err(e) => return Reply::Now(Err(e)),
        };
        let work = move || -> Result<()> { Ok(c.runtime().checkpoint(c.id(), &opts)?) };
        later(Order::InTurn(req.id.clone()), work, move |service, r| {
            r?;
            service.announce_checkpointed(&req.id, &req.path);
            Ok(Empty::new())
        })
    }

    fn plan_checkpoint(
        &self,
        req: &CheckpointTaskRequest,
    ) -> Result<(
        std::sync::Arc<crate::task::container::Container>,
        CheckpointOptions,
    )> {
        validate::absolute_path("checkpoint", &req.path).map_err(ShimError::InvalidArgument)?;
        let c = self.container(&req.id)?;
        let status = c.with_init(|p| p.status());
        if !matches!(status, Status::Running | Status::Paused) {
            return Err(ShimError::FailedPrecondition(format!(
                "container {:?} is {status}: cannot checkpoint it",
                req.id
            )));
        }
        Ok((c, checkpoint_options(req)?))
    }
}

/// The runtime's checkpoint options from the request's (containerd.runc.v1), the image
/// going to the request's path unless they name another.
fn checkpoint_options(req: &CheckpointTaskRequest) -> Result<CheckpointOptions> {
    let wanted = match req.options.as_ref().filter(|o| !o.value.is_empty()) {
        Some(any) => CheckpointOptionsMsg::parse_from_bytes(&any.value).map_err(|e| {
            ShimError::InvalidArgument(format!("cannot decode checkpoint options: {e}"))
        })?,
        None => CheckpointOptionsMsg::default(),
    };
    let image_path = match wanted.image_path.is_empty() {
        true => req.path.clone(),
        false => wanted.image_path.clone(),
    };
    let set = |s: &String| (!s.is_empty()).then(|| s.clone());
    Ok(CheckpointOptions {
        image_path: image_path.into(),
        work_path: set(&wanted.work_path).map(Into::into),
        leave_running: !wanted.exit,
        tcp_established: wanted.open_tcp,
        ext_unix_sk: wanted.external_unix_sockets,
        shell_job: wanted.terminal,
        file_locks: wanted.file_locks,
        manage_cgroups_mode: set(&wanted.cgroups_mode),
        empty_namespaces: wanted.empty_namespaces,
    })
}
