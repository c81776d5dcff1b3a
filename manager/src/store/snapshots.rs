//! Snapshots through the API: prepare (active or view), commit, remove, mounts, usage.

use super::{namespace, Store};
use crate::error::Result;
use crate::snapshots::{Info, Kind};
use skiff_protos::mount::Mount;

impl Store {
    pub fn prepare(&self, ns: &str, key: &str, parent: &str, kind: Kind) -> Result<Vec<Mount>> {
        let ns = namespace(ns)?;
        let parent = (!parent.is_empty()).then_some(parent);
        let dir = std::cell::RefCell::new(None);
        let result = self.db.tx(|tx| {
            let d = self.snapshots.make(tx, ns, key, parent)?;
            *dir.borrow_mut() = Some(d.clone());
            self.snapshots.record(tx, ns, key, parent, kind, &d)?;
            self.snapshots.mounts(tx, ns, key)
        });
        if result.is_err() {
            if let Some(d) = dir.into_inner() {
                self.snapshots.remove_dir(&d);
            }
        }
        result
    }

    pub fn commit(&self, ns: &str, name: &str, key: &str) -> Result<()> {
        let ns = namespace(ns)?;
        self.db.tx(|tx| self.snapshots.commit(tx, ns, name, key))
    }

    pub fn remove_snapshot(&self, ns: &str, key: &str) -> Result<()> {
        let ns = namespace(ns)?;
        let _gc = self.gc_lock.lock().unwrap_or_else(|p| p.into_inner());
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
