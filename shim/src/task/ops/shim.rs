//! Connect and Shutdown: the shim itself. Shutdown is granted only when no container is
//! left (another of the pod may still need the shim) or when asked `now`.

use crate::task::error::Result;
use crate::task::TaskService;
use protobuf::well_known_types::empty::Empty;
use skiff_protos::shim::{ConnectRequest, ConnectResponse, ShutdownRequest};
use std::sync::atomic::Ordering;

impl TaskService {
    pub fn connect(&self, req: ConnectRequest) -> Result<ConnectResponse> {
        let task_pid = self
            .container(&req.id)
            .map(|c| c.with_init(|p| p.pid()))
            .unwrap_or(0);
        Ok(ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..Default::default()
        })
    }

    /// The containers this shim serves, and those being created.
    pub fn container_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.containers.lock().unwrap().keys().cloned().collect();
        ids.extend(self.creating.lock().unwrap().iter().cloned());
        ids.sort();
        ids
    }

    pub fn shutdown(&self, req: ShutdownRequest) -> Result<Empty> {
        let busy = !self.containers.lock().unwrap().is_empty()
            || !self.creating.lock().unwrap().is_empty();
        if !busy || req.now {
            self.shutdown.store(true, Ordering::SeqCst);
        }
        Ok(Empty::new())
    }
}
