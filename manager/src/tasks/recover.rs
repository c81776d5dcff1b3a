//! At start: a task whose creation did not finish is discarded (whatever point the
//! crash hit: see `create`); skiffd reconnects to every other recorded shim still
//! serving; for a shim that is gone, its binary's `delete` cleans up and the exit is
//! recorded.

use super::TimedCall;
use super::{
    rows::{Row, CREATING},
    Tasks,
};
use crate::storage::db::now;
use skiff_protos::shim as api;
use skiff_shim_client::{Bootstrap, TaskClient};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

impl Tasks {
    pub fn recover(&self) -> Vec<String> {
        let mut done = Vec::new();
        for (ns, id) in self.task_keys(None).unwrap_or_default() {
            let Ok(row) = self.row(&ns, &id) else {
                continue;
            };
            if row.status == CREATING {
                self.discard(&ns, &id);
                done.push(format!("discarded the unfinished task of {ns}/{id}"));
            } else if let Some(c) = reconnect(&row, &id) {
                self.shims
                    .lock()
                    .unwrap()
                    .insert((ns.clone(), id.clone()), Arc::new(c));
                let _ = crate::shim::follow_log(Path::new(&row.bundle), &id);
                let output = self.output(&ns, &id);
                if output.exists() {
                    if let Err(e) = output.follow(self.logs.max_size) {
                        crate::log::warn(&format!("following the output of {ns}/{id}: {e}"));
                    }
                }
                let status = self.get(&ns, &id, "").map(|t| t.status).unwrap_or_default();
                done.push(format!("reconnected to the shim of {ns}/{id} ({status})"));
            } else if row.status != "stopped" {
                let (code, _) = self.binary_delete(&ns, &id, &row);
                let _ = self.set_status(&ns, &id, "stopped", Some((code, now())));
                let _ = self.forget_address(&ns, &id);
                done.push(format!(
                    "the shim of {ns}/{id} is gone: cleaned up, exit {code}"
                ));
            }
        }
        done
    }
}

/// The shim at the row's address, if it still serves the task.
fn reconnect(row: &Row, id: &str) -> Option<TaskClient> {
    if row.address.is_empty() || !skiff_shim_client::socket_path(&row.address).exists() {
        return None;
    }
    let boot = Bootstrap {
        address: row.address.clone(),
        version: row.version,
    };
    let c = TaskClient::connect(&boot).ok()?;
    let req = api::ConnectRequest {
        id: id.to_string(),
        ..Default::default()
    };
    let r: ttrpc::Result<api::ConnectResponse> =
        c.timed_call("Connect", &req, Duration::from_secs(5));
    r.ok().map(|_| c)
}
