//! Recovery at start: what a crash left (mounts, unfinished unpacks, files and
//! directories without rows) is taken away.

use super::Store;
use crate::error::Result;
use std::collections::HashSet;

impl Store {
    /// At start: unmounts what a crashed import left mounted, drops its unfinished
    /// snapshots, collects, and removes files and directories without rows.
    pub fn recover(&self) -> Result<Vec<String>> {
        let mut done = Vec::new();
        for m in skiff_mount::mounts_under(&self.mnt) {
            let _ = skiff_mount::unmount_all(&m);
            done.push(format!("unmounted {}", m.display()));
        }
        if let Ok(d) = std::fs::read_dir(&self.mnt) {
            for e in d.flatten() {
                let _ = std::fs::remove_dir(e.path());
            }
        }
        let stale: Vec<(String, String)> = self.db.tx(|tx| {
            let mut stmt = tx.prepare("SELECT namespace, key FROM snapshots WHERE kind = 'active' AND key LIKE 'extract-%'")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<std::result::Result<_, _>>()?)
        })?;
        for (ns, key) in stale {
            if let Ok(dir) = self.db.tx(|tx| self.snapshots.delete_row(tx, &ns, &key)) {
                self.snapshots.remove_dir(&dir);
                done.push(format!("dropped unfinished snapshot {key}"));
            }
        }
        let (blobs, dirs) = self.collect_now()?;
        if blobs + dirs > 0 {
            done.push(format!("collected {blobs} blob(s) and {dirs} snapshot(s)"));
        }
        let n = self.content.clear_ingest();
        if n > 0 {
            done.push(format!("removed {n} partial ingest file(s)"));
        }
        let known: HashSet<String> = self.db.tx(|tx| {
            let mut stmt = tx.prepare("SELECT digest FROM content")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<std::result::Result<_, _>>()?)
        })?;
        for digest in self.content.list_files() {
            if !known.contains(&digest) {
                let _ = self.content.remove(&digest);
                done.push(format!("removed blob {digest} without a row"));
            }
        }
        let dirs: HashSet<String> = self.db.tx(|tx| {
            let mut stmt = tx.prepare("SELECT dir FROM snapshots")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<std::result::Result<_, _>>()?)
        })?;
        for dir in self.snapshots.list_dirs() {
            if !dirs.contains(&dir) {
                self.snapshots.remove_dir(&dir);
                done.push(format!("removed snapshot directory {dir} without a row"));
            }
        }
        Ok(done)
    }
}
