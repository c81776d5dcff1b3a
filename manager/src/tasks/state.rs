//! What a task is now: from its shim while it lives, else as recorded; waiting for its
//! exit; exits that shims report; a detached task's log.

use super::TimedCall;
use super::{shim_err, status_name, TaskInfo, Tasks, CALL, WAIT};
use crate::error::{io, Error, Result};
use crate::storage::db::now;
use crate::store::namespace;
use skiff_protos::shim as api;
use skiff_protos::task::Status;

impl Tasks {
    /// State from the shim when it lives, else what was recorded.
    pub fn get(&self, ns: &str, id: &str, exec_id: &str) -> Result<TaskInfo> {
        let ns = namespace(ns)?;
        let row = self.row(ns, id)?;
        let recorded = TaskInfo {
            container_id: id.into(),
            exec_id: exec_id.into(),
            pid: row.pid,
            status: row.status.clone(),
            exit_status: row.exit_status,
            exited_at: row.exited_at,
            runtime: row.runtime_path.clone(),
            image: self
                .store
                .get_container(ns, id)
                .map(|c| c.image)
                .unwrap_or_default(),
        };
        let Some(s) = self.shim_state(ns, id, exec_id)? else {
            return Ok(recorded);
        };
        let status = status_name(s.status.enum_value().unwrap_or(Status::UNKNOWN)).to_string();
        let exited_at = crate::storage::db::timestamp_nanos(s.exited_at.as_ref());
        if exec_id.is_empty() && status != row.status {
            let exit = (status == "stopped").then_some((s.exit_status, exited_at));
            self.set_status(ns, id, &status, exit)?;
        }
        Ok(TaskInfo {
            pid: s.pid,
            status,
            exit_status: s.exit_status,
            exited_at,
            ..recorded
        })
    }

    /// The shim's State of the task or exec; None (the recorded state stands) when the
    /// shim is gone or unreachable, which loses an exec but not the task.
    fn shim_state(&self, ns: &str, id: &str, exec_id: &str) -> Result<Option<api::StateResponse>> {
        let gone = || {
            if exec_id.is_empty() {
                Ok(None)
            } else {
                Err(Error::NotFound(format!(
                    "exec {exec_id:?} is gone with its shim"
                )))
            }
        };
        let Ok(c) = self.shim(ns, id) else {
            return gone();
        };
        let req = api::StateRequest {
            id: id.into(),
            exec_id: exec_id.into(),
            ..Default::default()
        };
        match c.timed_call("State", &req, CALL) {
            Ok(s) => Ok(Some(s)),
            Err(e @ ttrpc::Error::RpcStatus(_)) => Err(shim_err(e)),
            Err(_) if exec_id.is_empty() => Ok(None),
            Err(e) => Err(shim_err(e)),
        }
    }

    pub fn list(&self, ns: &str) -> Result<Vec<TaskInfo>> {
        let ns = namespace(ns)?;
        let keys = self.task_keys(Some(ns))?;
        keys.iter().map(|(_, id)| self.get(ns, id, "")).collect()
    }

    pub fn wait(&self, ns: &str, id: &str, exec_id: &str) -> Result<TaskInfo> {
        let ns = namespace(ns)?;
        let c = self.shim(ns, id)?;
        let r: api::WaitResponse = c
            .timed_call(
                "Wait",
                &api::WaitRequest {
                    id: id.into(),
                    exec_id: exec_id.into(),
                    ..Default::default()
                },
                WAIT,
            )
            .map_err(shim_err)?;
        let at = Some(crate::storage::db::timestamp_nanos(r.exited_at.as_ref()))
            .filter(|t| *t > 0)
            .unwrap_or_else(now);
        if exec_id.is_empty() {
            self.set_status(ns, id, "stopped", Some((r.exit_status, at)))?;
        }
        Ok(TaskInfo {
            container_id: id.into(),
            exec_id: exec_id.into(),
            status: "stopped".into(),
            exit_status: r.exit_status,
            exited_at: at,
            ..Default::default()
        })
    }

    pub fn logs(&self, ns: &str, id: &str) -> Result<Vec<u8>> {
        let ns = namespace(ns)?;
        self.row(ns, id)?;
        super::output::read(&self.log_dir(ns, id)).map_err(|e| io("reading the log", e))
    }

    /// An exit event from a shim: recorded for the task's init process.
    pub fn on_exit(&self, ns: &str, id: &str, exec_id: &str, status: u32) {
        if exec_id.is_empty() || exec_id == id {
            let _ = self.set_status(ns, id, "stopped", Some((status, now())));
        }
    }
}
