//! Update: new resource limits for a running container, applied by the runtime.

use crate::task::error::{Result, ShimError};
use crate::task::job::{later, Order, Reply};
use crate::task::TaskService;
use protobuf::well_known_types::empty::Empty;
use skiff_protos::shim::UpdateTaskRequest;

impl TaskService {
    pub fn update(&self, req: UpdateTaskRequest) -> Reply<Empty> {
        let c = match self.container(&req.id) {
            Ok(c) => c,
            Err(e) => return Reply::Now(Err(e)),
        };
        let Some(resources) = req.resources.into_option() else {
            return Reply::Now(Err(ShimError::InvalidArgument(
                "update request carries no resources".into(),
            )));
        };
        let work = move || -> Result<()> { Ok(c.runtime().update(c.id(), &resources.value)?) };
        later(Order::InTurn(req.id.clone()), work, |_, r| {
            r.map(|()| Empty::new())
        })
    }
}
