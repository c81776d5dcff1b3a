//! Snapshots through the API: prepare (active or view), commit, remove, mounts, usage.

use super::{namespace, Store};
use crate::error::Result;
use crate::storage::trees::{Info, Kind};
use rusqlite::Transaction;
use skiff_protos::mount::Mount;

impl Store {
    pub fn prepare(&self, ns: &str, key: &str, parent: &str, kind: Kind) -> Result<Vec<Mount>> {
        let ns = namespace(ns)?;
        let parent = (!parent.is_empty()).then_some(parent);
        self.new_snapshot(ns, key, parent, kind, |_| Ok(()))?;
        self.db.tx(|tx| self.snapshots.mounts(tx, ns, key))
    }

    /// A new snapshot: checked in one transaction, its directory made (and, natively,
    /// the parent copied) outside any, then recorded in a second that checks again and
    /// runs `also` (a container's row); the directory goes again if that fails.
    pub(super) fn new_snapshot(
        &self,
        ns: &str,
        key: &str,
        parent: Option<&str>,
        kind: Kind,
        also: impl FnOnce(&Transaction) -> Result<()>,
    ) -> Result<String> {
        let parent_dir = self
            .db
            .tx(|tx| self.snapshots.check_new(tx, ns, key, parent))?;
        let dir = self.snapshots.make_dir(parent_dir.as_deref())?;
        let recorded = self.db.tx(|tx| {
            self.snapshots.check_new(tx, ns, key, parent)?;
            self.snapshots.record(tx, ns, key, parent, kind, &dir)?;
            also(tx)
        });
        match recorded {
            Ok(()) => Ok(dir),
            Err(e) => {
                self.snapshots.remove_dir(&dir);
                Err(e)
            }
        }
    }

    pub fn commit(&self, ns: &str, name: &str, key: &str) -> Result<()> {
        let ns = namespace(ns)?;
        self.db.tx(|tx| self.snapshots.commit(tx, ns, name, key))
    }

    pub fn remove_snapshot(&self, ns: &str, key: &str) -> Result<()> {
        let ns = namespace(ns)?;
        let dir = self.db.tx(|tx| self.snapshots.delete_row(tx, ns, key))?;
        self.snapshots.remove_dir(&dir);
        Ok(())
    }

    pub fn mounts(&self, ns: &str, key: &str) -> Result<Vec<Mount>> {
        let ns = namespace(ns)?;
        self.db.tx(|tx| self.snapshots.mounts(tx, ns, key))
    }

    pub fn usage(&self, ns: &str, key: &str) -> Result<(i64, i64)> {
        let ns = namespace(ns)?;
        self.db.tx(|tx| self.snapshots.usage(tx, ns, key))
    }

    pub fn list_snapshots(&self, ns: &str) -> Result<Vec<Info>> {
        let ns = namespace(ns)?;
        self.db.tx(|tx| self.snapshots.list(tx, ns))
    }
}
