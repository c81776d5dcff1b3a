//! The tasks table: one row per container with a task. A create claims the row first
//! (status `creating`, in the transaction that checks there is none), records the
//! shim's address the moment `start` gives it, and marks it `created` once the shim has
//! the task: at every point of a crash, recovery finds the row and what it needs to
//! clean up.

use super::Tasks;
use crate::error::{Error, Result};
use crate::storage::db::now;
use rusqlite::{params, OptionalExtension};
use skiff_shim_client::Bootstrap;
use std::path::Path;

pub const CREATING: &str = "creating";

/// Whether container (?1, ?2) has a task row.
pub const HAS_TASK: &str = "SELECT 1 FROM tasks WHERE namespace = ?1 AND container_id = ?2";

pub struct Row {
    pub runtime_path: String,
    pub address: String,
    pub version: u32,
    pub bundle: String,
    pub pid: u32,
    pub status: String,
    pub exit_status: u32,
    pub exited_at: i64,
}

impl Tasks {
    pub(super) fn row(&self, ns: &str, id: &str) -> Result<Row> {
        self.store
            .db
            .tx(|tx| {
                Ok(tx
                    .query_row(
                        "SELECT runtime_path, address, version, bundle, pid, status, exit_status, exited_at FROM tasks WHERE namespace = ?1 AND container_id = ?2",
                        params![ns, id],
                        |r| {
                            Ok(Row {
                                runtime_path: r.get(0)?,
                                address: r.get(1)?,
                                version: r.get(2)?,
                                bundle: r.get(3)?,
                                pid: r.get(4)?,
                                status: r.get(5)?,
                                exit_status: r.get(6)?,
                                exited_at: r.get(7)?,
                            })
                        },
                    )
                    .optional()?)
            })?
            .ok_or_else(|| Error::NotFound(format!("container {id:?} has no task")))
    }

    /// The row of a task about to be created; refused if the container has one.
    pub(super) fn claim(&self, ns: &str, id: &str, runtime: &Path, bundle: &Path) -> Result<()> {
        self.store.db.tx(|tx| {
            if crate::storage::db::exists(tx, HAS_TASK, params![ns, id])? {
                return Err(Error::AlreadyExists(format!(
                    "container {id:?} already has a task"
                )));
            }
            tx.execute(
                "INSERT INTO tasks (namespace, container_id, runtime_path, address, version, bundle, pid, status, created_at) VALUES (?1, ?2, ?3, '', 0, ?4, 0, ?5, ?6)",
                params![ns, id, runtime.display().to_string(), bundle.display().to_string(), CREATING, now()],
            )?;
            Ok(())
        })
    }

    pub(super) fn record_shim(&self, ns: &str, id: &str, boot: &Bootstrap) -> Result<()> {
        self.update(
            "UPDATE tasks SET address = ?3, version = ?4 WHERE namespace = ?1 AND container_id = ?2",
            params![ns, id, boot.address, boot.version],
        )
    }

    pub(super) fn record_created(&self, ns: &str, id: &str, pid: u32) -> Result<()> {
        self.update(
            "UPDATE tasks SET pid = ?3, status = 'created' WHERE namespace = ?1 AND container_id = ?2",
            params![ns, id, pid],
        )
    }

    pub(super) fn set_status(
        &self,
        ns: &str,
        id: &str,
        status: &str,
        exit: Option<(u32, i64)>,
    ) -> Result<()> {
        match exit {
            Some((code, at)) => self.update(
                "UPDATE tasks SET status = ?3, exit_status = ?4, exited_at = ?5 WHERE namespace = ?1 AND container_id = ?2",
                params![ns, id, status, code, at],
            ),
            None => self.update(
                "UPDATE tasks SET status = ?3 WHERE namespace = ?1 AND container_id = ?2",
                params![ns, id, status],
            ),
        }
    }

    pub(super) fn forget_address(&self, ns: &str, id: &str) -> Result<()> {
        self.update(
            "UPDATE tasks SET address = '' WHERE namespace = ?1 AND container_id = ?2",
            params![ns, id],
        )
    }

    pub(super) fn delete_row(&self, ns: &str, id: &str) -> Result<()> {
        self.update(
            "DELETE FROM tasks WHERE namespace = ?1 AND container_id = ?2",
            params![ns, id],
        )
    }

    /// (namespace, container id) of every task, oldest first; of `ns` only if given.
    pub(super) fn task_keys(&self, ns: Option<&str>) -> Result<Vec<(String, String)>> {
        self.store.db.tx(|tx| {
            let mut stmt = tx.prepare(
                "SELECT namespace, container_id FROM tasks WHERE ?1 IS NULL OR namespace = ?1 ORDER BY created_at",
            )?;
            let rows = stmt.query_map(params![ns], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<std::result::Result<_, _>>()?)
        })
    }

    fn update(&self, sql: &str, params: impl rusqlite::Params) -> Result<()> {
        self.store.db.tx(|tx| {
            tx.execute(sql, params)?;
            Ok(())
        })
    }
}
