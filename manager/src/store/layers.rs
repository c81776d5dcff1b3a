//! Unpacking an image's layers, each into a committed snapshot named by its chain id
//! (shared by every image of the namespace with the same layers below), checked against
//! its diff id, its bytes counted against the import's limits as they stream.

use super::Store;
use crate::archive::{self, ArchiveImage};
use crate::error::{Error, Result};
use crate::limits::Budget;
use crate::storage::db::now;
use crate::storage::trees::Kind;
use sha2::{Digest, Sha256};
use std::path::Path;

impl Store {
    /// Unpacks each layer not yet unpacked into a committed snapshot named by its chain
    /// id; returns the key of the top one.
    pub(super) fn unpack(&self, ns: &str, image: &ArchiveImage, budget: &Budget) -> Result<String> {
        let mut parent: Option<String> = None;
        let mut chain = String::new();
        for (layer, diff_id) in image.layers.iter().zip(&image.diff_ids) {
            chain = if chain.is_empty() {
                diff_id.clone()
            } else {
                format!("sha256:{:x}", Sha256::digest(format!("{chain} {diff_id}")))
            };
            let key = chain.clone();
            let exists = self.db.tx(|tx| self.snapshots.exists(tx, ns, &key))?;
            if !exists {
                self.unpack_layer(ns, &layer.digest, diff_id, parent.as_deref(), &key, budget)?;
            }
            parent = Some(key);
        }
        parent.ok_or_else(|| Error::Corrupt("the image has no layers".into()))
    }

    fn unpack_layer(
        &self,
        ns: &str,
        digest: &str,
        diff_id: &str,
        parent: Option<&str>,
        key: &str,
        budget: &Budget,
    ) -> Result<()> {
        let active = format!("extract-{}-{key}", now());
        let dir = self.new_snapshot(ns, &active, parent, Kind::Active, |_| Ok(()))?;
        let target = self.mnt.join(&dir);
        let applied = (|| {
            std::fs::create_dir_all(&target)
                .map_err(|e| crate::error::io("creating a mount point", e))?;
            let mounts = self.db.tx(|tx| self.snapshots.mounts(tx, ns, &active))?;
            skiff_mount::mount_all(&mounts, &target)
                .map_err(|e| crate::error::io(format!("mounting {}", target.display()), e))?;
            let result = self.apply_layer(&target, digest, diff_id, budget);
            let _ = skiff_mount::unmount_all(&target);
            result
        })();
        let _ = std::fs::remove_dir(&target);
        match applied {
            Ok(()) => self.db.tx(|tx| self.snapshots.commit(tx, ns, key, &active)),
            Err(e) => {
                if let Ok(dir) = self.db.tx(|tx| self.snapshots.delete_row(tx, ns, &active)) {
                    self.snapshots.remove_dir(&dir);
                }
                Err(e)
            }
        }
    }

    /// The layer onto the mounted snapshot, read to its end, its diff id checked.
    fn apply_layer(
        &self,
        target: &Path,
        digest: &str,
        diff_id: &str,
        budget: &Budget,
    ) -> Result<()> {
        let mut metered = Metered {
            inner: archive::layer_reader(&self.content, digest)?,
            hasher: Sha256::new(),
            budget,
            stopped: None,
        };
        let applied = crate::unpack::apply(target, &mut metered, budget).and_then(|_| {
            std::io::copy(&mut metered, &mut std::io::sink())
                .map(drop)
                .map_err(|e| Error::Corrupt(format!("reading layer {digest}: {e}")))
        });
        if let Some(limit) = metered.stopped.take() {
            return Err(limit);
        }
        applied?;
        let got = format!(
            "sha256:{:x}",
            std::mem::take(&mut metered.hasher).finalize()
        );
        if got != diff_id {
            return Err(Error::Corrupt(format!(
                "layer {digest} unpacks to {got}, but the image config says {diff_id}"
            )));
        }
        Ok(())
    }
}

/// Hashes what passes through, for a layer's diff id, and counts it against the import's
/// budget; past a limit it fails the read and keeps the limit's error.
struct Metered<'a, R> {
    inner: R,
    hasher: Sha256,
    budget: &'a Budget,
    stopped: Option<Error>,
}

impl<R: std::io::Read> std::io::Read for Metered<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        if let Err(limit) = self.budget.unpacked(n as u64) {
            self.stopped = Some(limit);
            return Err(std::io::Error::other("an import limit was reached"));
        }
        Ok(n)
    }
}
