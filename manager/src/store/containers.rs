//! Container rows: a container is made with its active snapshot on its image's layers
//! and its OCI spec, in one transaction; labelled, listed, removed with its snapshot.

use super::{labels_json, namespace, parse_labels, ContainerRecord, Labels, NewContainer, Store};
use crate::error::{check_id, check_name, Error, Result};
use crate::storage::db::{ensure_namespace, now};
use crate::storage::trees::Kind;
use rusqlite::{params, OptionalExtension};

impl Store {
    pub fn create_container(&self, ns: &str, c: NewContainer) -> Result<ContainerRecord> {
        let ns = namespace(ns)?;
        check_id("container id", &c.id)?;
        let image = self.resolve_image(ns, &c.image)?;
        let config = self.image_config(&image)?;
        let spec = crate::spec::generate(
            &c.id,
            &c.process,
            &config,
            &format!("{}/{ns}/{}", self.cgroup_parent, c.id),
        )?;
        let runtime = if c.runtime_name.is_empty() {
            "io.containerd.skiff.v2".to_string()
        } else {
            c.runtime_name.clone()
        };
        let now = now();
        let key = c.id.clone();
        let snapshotter = self.snapshots.driver.name();
        let container_row = |tx: &rusqlite::Transaction| {
            ensure_namespace(tx, ns)?;
            tx.execute(
                "INSERT INTO containers (namespace, id, labels, image, runtime_name, runtime_options, spec, snapshotter, snapshot_key, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
                params![ns, c.id, labels_json(&c.labels), c.image, runtime, c.runtime_options, spec, snapshotter, key, now],
            )?;
            Ok(())
        };
        self.db.tx(|tx| self.check_no_container(tx, ns, &c.id))?;
        self.new_snapshot(ns, &key, Some(&image.snapshot_key), Kind::Active, |tx| {
            self.check_no_container(tx, ns, &c.id)?;
            container_row(tx)
        })
        .map_err(|e| match e {
            Error::AlreadyExists(_) => {
                Error::AlreadyExists(format!("container {:?} already exists", c.id))
            }
            other => other,
        })?;
        self.get_container(ns, &c.id)
    }

    fn check_no_container(&self, tx: &rusqlite::Transaction, ns: &str, id: &str) -> Result<()> {
        let sql = "SELECT 1 FROM containers WHERE namespace = ?1 AND id = ?2";
        if crate::storage::db::exists(tx, sql, params![ns, id])? {
            return Err(Error::AlreadyExists(format!(
                "container {id:?} already exists"
            )));
        }
        Ok(())
    }

    fn container_row(r: &rusqlite::Row) -> rusqlite::Result<ContainerRecord> {
        Ok(ContainerRecord {
            id: r.get(0)?,
            labels: parse_labels(&r.get::<_, String>(1)?),
            image: r.get(2)?,
            runtime_name: r.get(3)?,
            runtime_options: r.get(4)?,
            spec: r.get(5)?,
            snapshotter: r.get(6)?,
            snapshot_key: r.get(7)?,
            created_at: r.get(8)?,
            updated_at: r.get(9)?,
        })
    }

    const CONTAINER_COLUMNS: &'static str =
        "id, labels, image, runtime_name, runtime_options, spec, snapshotter, snapshot_key, created_at, updated_at";

    pub fn get_container(&self, ns: &str, id: &str) -> Result<ContainerRecord> {
        let ns = namespace(ns)?;
        self.db
            .tx(|tx| {
                Ok(tx
                    .query_row(
                        &format!(
                            "SELECT {} FROM containers WHERE namespace = ?1 AND id = ?2",
                            Self::CONTAINER_COLUMNS
                        ),
                        params![ns, id],
                        Self::container_row,
                    )
                    .optional()?)
            })?
            .ok_or_else(|| Error::NotFound(format!("container {id:?} does not exist")))
    }

    /// Containers whose labels match every filter (`key=value`, or `key` for presence).
    pub fn list_containers(&self, ns: &str, filters: &[String]) -> Result<Vec<ContainerRecord>> {
        let ns = namespace(ns)?;
        let all: Vec<ContainerRecord> = self.db.tx(|tx| {
            let mut stmt = tx.prepare(&format!(
                "SELECT {} FROM containers WHERE namespace = ?1 ORDER BY created_at",
                Self::CONTAINER_COLUMNS
            ))?;
            let rows = stmt.query_map(params![ns], Self::container_row)?;
            Ok(rows.collect::<std::result::Result<_, _>>()?)
        })?;
        Ok(all
            .into_iter()
            .filter(|c| {
                filters.iter().all(|f| match f.split_once('=') {
                    Some((k, v)) => c.labels.get(k).map(|x| x == v).unwrap_or(false),
                    None => c.labels.contains_key(f),
                })
            })
            .collect())
    }

    /// Sets labels; an empty value removes one.
    pub fn label_container(&self, ns: &str, id: &str, set: &Labels) -> Result<ContainerRecord> {
        let ns = namespace(ns)?;
        for k in set.keys() {
            check_name("label key", k, 256)?;
        }
        self.db.tx(|tx| {
            let labels: String = tx
                .query_row("SELECT labels FROM containers WHERE namespace = ?1 AND id = ?2", params![ns, id], |r| r.get(0))
                .optional()?
                .ok_or_else(|| Error::NotFound(format!("container {id:?} does not exist")))?;
            let mut labels = parse_labels(&labels);
            for (k, v) in set {
                if v.is_empty() {
                    labels.remove(k);
                } else {
                    labels.insert(k.clone(), v.clone());
                }
            }
            tx.execute(
                "UPDATE containers SET labels = ?3, updated_at = ?4 WHERE namespace = ?1 AND id = ?2",
                params![ns, id, labels_json(&labels), now()],
            )?;
            Ok(())
        })?;
        self.get_container(ns, id)
    }

    /// Removes the container and its snapshot.
    pub fn delete_container(&self, ns: &str, id: &str) -> Result<()> {
        let ns = namespace(ns)?;
        let dir = self.db.tx(|tx| {
            let key: String = tx
                .query_row(
                    "SELECT snapshot_key FROM containers WHERE namespace = ?1 AND id = ?2",
                    params![ns, id],
                    |r| r.get(0),
                )
                .optional()?
                .ok_or_else(|| Error::NotFound(format!("container {id:?} does not exist")))?;
            let has_task = "SELECT 1 FROM tasks WHERE namespace = ?1 AND container_id = ?2";
            if crate::storage::db::exists(tx, has_task, params![ns, id])? {
                return Err(Error::FailedPrecondition(format!(
                    "container {id:?} has a task: delete the task first"
                )));
            }
            tx.execute(
                "DELETE FROM containers WHERE namespace = ?1 AND id = ?2",
                params![ns, id],
            )?;
            self.snapshots.delete_row(tx, ns, &key)
        })?;
        self.snapshots.remove_dir(&dir);
        // The image may be gone already: its layers go with its last container.
        self.collect()?;
        Ok(())
    }
}
