//! Collection: rows of content no image references and of committed snapshots nothing
//! stands on are deleted in one transaction; their files after.

use super::Store;
use crate::error::Result;
use rusqlite::{params, Transaction};
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::TryLockError;

impl Store {
    /// Collects now, or, while an import runs, as soon as it is done (see
    /// [`Store::import`]): never waits for an import.
    pub fn collect(&self) -> Result<(usize, usize)> {
        // Asked for first, so that an import that ends right now sees it.
        self.collect_after_import.store(true, Ordering::SeqCst);
        match self.import_lock.try_lock() {
            Ok(_none_running) => {
                self.collect_after_import.store(false, Ordering::SeqCst);
                self.collect_now()
            }
            Err(TryLockError::WouldBlock) => Ok((0, 0)),
            Err(TryLockError::Poisoned(_)) => self.collect_now(),
        }
    }

    /// Deletes, in one transaction, the rows of content no image references and of
    /// committed snapshots no image or container needs; then their files. Only with no
    /// import running.
    pub(super) fn collect_now(&self) -> Result<(usize, usize)> {
        let (blobs, dirs) = self.db.tx(|tx| {
            let mut stmt = tx.prepare(
                "SELECT digest FROM content WHERE digest NOT IN (SELECT digest FROM content_refs)",
            )?;
            let blobs: Vec<String> = stmt
                .query_map([], |r| r.get(0))?
                .collect::<std::result::Result<_, _>>()?;
            drop(stmt);
            for d in &blobs {
                tx.execute("DELETE FROM content WHERE digest = ?1", params![d])?;
            }
            let dirs = collect_snapshots(tx)?;
            Ok((blobs, dirs))
        })?;
        for d in &blobs {
            let _ = self.content.remove(d);
        }
        for d in &dirs {
            self.snapshots.remove_dir(d);
        }
        Ok((blobs.len(), dirs.len()))
    }
}

/// Deletes committed snapshot rows not reachable (through parents) from an image, a
/// container or an active or view snapshot; returns their directories.
fn collect_snapshots(tx: &Transaction) -> Result<Vec<String>> {
    let mut stmt = tx.prepare("SELECT namespace, key, parent, kind, dir FROM snapshots")?;
    let all: Vec<(String, String, Option<String>, String, String)> = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<std::result::Result<_, _>>()?;
    drop(stmt);
    let mut roots: Vec<(String, String)> = Vec::new();
    for table in ["images", "containers"] {
        let mut stmt = tx.prepare(&format!("SELECT namespace, snapshot_key FROM {table}"))?;
        let rows: Vec<(String, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<std::result::Result<_, _>>()?;
        roots.extend(rows);
    }
    roots.extend(
        all.iter()
            .filter(|s| s.3 != "committed")
            .map(|s| (s.0.clone(), s.1.clone())),
    );
    let parent_of: std::collections::HashMap<(String, String), Option<String>> = all
        .iter()
        .map(|s| ((s.0.clone(), s.1.clone()), s.2.clone()))
        .collect();
    let mut live: HashSet<(String, String)> = HashSet::new();
    for root in roots {
        let mut next = Some(root);
        while let Some(k) = next {
            if !live.insert(k.clone()) {
                break;
            }
            next = parent_of
                .get(&k)
                .cloned()
                .flatten()
                .map(|p| (k.0.clone(), p));
        }
    }
    // Children before parents, so the parent foreign key holds at every delete.
    let mut dead: Vec<&(String, String, Option<String>, String, String)> = all
        .iter()
        .filter(|s| !live.contains(&(s.0.clone(), s.1.clone())))
        .collect();
    let depth = |s: &(String, String, Option<String>, String, String)| {
        let mut d = 0;
        let mut next = s.2.clone();
        while let Some(p) = next {
            d += 1;
            next = parent_of.get(&(s.0.clone(), p)).cloned().flatten();
        }
        d
    };
    dead.sort_by_key(|s| std::cmp::Reverse(depth(s)));
    let mut dirs = Vec::new();
    for s in dead {
        tx.execute(
            "DELETE FROM snapshots WHERE namespace = ?1 AND key = ?2",
            params![s.0, s.1],
        )?;
        dirs.push(s.4.clone());
    }
    Ok(dirs)
}
