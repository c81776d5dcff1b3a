//! Deleting an exec, a task (its shim shut down, or its binary's `delete` when it is
//! gone; its bundle removed once nothing is mounted under it), or the container itself.

use super::TimedCall;
use super::{bundle, rows::Row, shim_err, TaskInfo, Tasks, CALL};
use crate::error::{Error, Result};
use crate::store::namespace;
use skiff_protos::shim as api;
use skiff_shim_client::TaskClient;
use std::path::Path;

impl Tasks {
    /// Deletes an exec, or the task: its process must have exited.
    pub fn delete(&self, ns: &str, id: &str, exec_id: &str) -> Result<TaskInfo> {
        let ns = namespace(ns)?;
        if !exec_id.is_empty() {
            return self.delete_exec(ns, id, exec_id);
        }
        self.locks.run(ns, id, || {
            let row = self.row(ns, id)?;
            let (exit_status, pid) = match self.shim(ns, id).ok() {
                Some(c) => delete_and_shut_down(&c, id)?,
                None if row.status == "stopped" => (row.exit_status, row.pid),
                None => self.binary_delete(ns, id, &row),
            };
            self.forget_shim(ns, id);
            self.delete_row(ns, id)?;
            self.output(ns, id).release();
            bundle::remove(Path::new(&row.bundle))?;
            Ok(TaskInfo {
                container_id: id.into(),
                pid,
                status: "deleted".into(),
                exit_status,
                ..Default::default()
            })
        })
    }

    fn delete_exec(&self, ns: &str, id: &str, exec_id: &str) -> Result<TaskInfo> {
        let c = self
            .shim(ns, id)
            .map_err(|_| Error::NotFound(format!("exec {exec_id:?} is gone with its shim")))?;
        let req = api::DeleteRequest {
            id: id.into(),
            exec_id: exec_id.into(),
            ..Default::default()
        };
        let r: api::DeleteResponse = c.timed_call("Delete", &req, CALL).map_err(shim_err)?;
        Ok(TaskInfo {
            container_id: id.into(),
            exec_id: exec_id.into(),
            pid: r.pid,
            status: "deleted".into(),
            exit_status: r.exit_status,
            ..Default::default()
        })
    }

    /// (exit status, pid) from the binary's `delete`, for a task whose shim is gone.
    pub(super) fn binary_delete(&self, ns: &str, id: &str, row: &Row) -> (u32, u32) {
        self.launcher
            .delete(Path::new(&row.runtime_path), ns, id, Path::new(&row.bundle))
            .unwrap_or((137, row.pid))
    }

    /// Removes the container (and its snapshot), never while a life-cycle operation of
    /// its task is under way: one that claimed a task makes this fail instead.
    pub fn delete_container(&self, ns: &str, id: &str) -> Result<()> {
        let ns = namespace(ns)?;
        self.locks.run(ns, id, || {
            self.store.delete_container(ns, id)?;
            // Its log goes with it (a task's deletion keeps it for `skiff logs`).
            let dir = self.log_dir(ns, id);
            match std::fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    crate::log::warn(&format!("removing the log of {ns}/{id}: {e}"))
                }
                _ => {}
            }
            Ok(())
        })
    }
}

fn delete_and_shut_down(c: &TaskClient, id: &str) -> Result<(u32, u32)> {
    let req = api::DeleteRequest {
        id: id.into(),
        ..Default::default()
    };
    let r: api::DeleteResponse = c.timed_call("Delete", &req, CALL).map_err(shim_err)?;
    let shutdown = api::ShutdownRequest {
        id: id.into(),
        ..Default::default()
    };
    let _ =
        c.timed_call::<_, protobuf::well_known_types::empty::Empty>("Shutdown", &shutdown, CALL);
    Ok((r.exit_status, r.pid))
}
