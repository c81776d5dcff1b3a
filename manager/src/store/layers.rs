//! Unpacking an image's layers, each into a committed snapshot named by its chain id
//! (shared by every image with the same layers below), checked against its diff id.

use super::Store;
use crate::db::now;
use crate::error::{Error, Result};
use crate::import::{self, ArchiveImage};
use crate::snapshots::Kind;
use sha2::{Digest, Sha256};

impl Store {
    /// Unpacks each layer not yet unpacked into a committed snapshot named by its chain
    /// id; returns the key of the top one.
    pub(super) fn unpack(&self, ns: &str, image: &ArchiveImage) -> Result<String> {
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
                self.unpack_layer(ns, &layer.digest, diff_id, parent.as_deref(), &key)?;
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
    ) -> Result<()> {
        let active = format!("extract-{}-{key}", now());
        let dir = self.db.tx(|tx| {
            let dir = self.snapshots.make(tx, ns, &active, parent)?;
            self.snapshots
                .record(tx, ns, &active, parent, Kind::Active, &dir)?;
            Ok(dir)
        })?;
        let target = self.mnt.join(&dir);
        let applied = (|| {
            std::fs::create_dir_all(&target)
                .map_err(|e| crate::error::io("creating a mount point", e))?;
            let mounts = self.db.tx(|tx| self.snapshots.mounts(tx, ns, &active))?;
            crate::mount::mount_all(&mounts, &target)?;
            let result = (|| {
                let mut hashing = HashingReader::new(import::layer_reader(&self.content, digest)?);
                crate::unpack::apply(&target, &mut hashing)?;
                std::io::copy(&mut hashing, &mut std::io::sink())
                    .map_err(|e| Error::Corrupt(format!("reading layer {digest}: {e}")))?;
                let got = hashing.digest();
                if got != diff_id {
                    return Err(Error::Corrupt(format!(
                        "layer {digest} unpacks to {got}, but the image config says {diff_id}"
                    )));
                }
                Ok(())
            })();
            let _ = crate::mount::unmount(&target);
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
}

/// Hashes what passes through, for a layer's diff id.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: std::io::Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
        }
    }
    fn digest(&mut self) -> String {
        format!("sha256:{:x}", std::mem::take(&mut self.hasher).finalize())
    }
}

impl<R: std::io::Read> std::io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}
