//! State and Stats: what the shim knows of a process, and what its container's cgroup
//! says. Both answer at once, whatever else runs.

use crate::events::timestamp;
use crate::task::error::{Result, ShimError};
use crate::task::TaskService;
use protobuf::MessageField;
use skiff_protos::shim::{StateRequest, StateResponse, StatsRequest, StatsResponse};

impl TaskService {
    pub fn state(&self, req: StateRequest) -> Result<StateResponse> {
        let c = self.container(&req.id)?;
        let bundle = c.bundle().to_string_lossy().into_owned();
        c.with(&req.exec_id, |p| {
            let paths = p.paths();
            Ok(StateResponse {
                id: if req.exec_id.is_empty() {
                    &req.id
                } else {
                    &req.exec_id
                }
                .clone(),
                bundle,
                pid: p.pid(),
                status: p.status().wire().into(),
                stdin: paths.stdin.clone(),
                stdout: paths.stdout.clone(),
                stderr: paths.stderr.clone(),
                terminal: paths.terminal,
                exit_status: p.exit().map(|e| e.status).unwrap_or_default(),
                exited_at: MessageField::from_option(p.exit().map(|e| timestamp(e.at))),
                exec_id: req.exec_id.clone(),
                ..Default::default()
            })
        })
    }

    pub fn stats(&self, req: StatsRequest) -> Result<StatsResponse> {
        let c = self.container(&req.id)?;
        let cgroup = c.cgroup().ok_or_else(|| {
            ShimError::NotFound(format!("container {:?} has no cgroup to read", req.id))
        })?;
        let stats =
            (cgroup.metrics().to_any()).map_err(|e| ShimError::internal("encoding metrics", e))?;
        Ok(StatsResponse {
            stats: MessageField::some(stats),
            ..Default::default()
        })
    }
}
