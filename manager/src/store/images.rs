//! Image rows: recording an imported image (its content rows and references), finding
//! one by its name or docker's short name, listing, removing, and its config.

use super::{namespace, parse_labels, ImageRecord, Store};
use crate::archive::{self, ArchiveImage};
use crate::error::{Error, Result};
use crate::storage::db::{ensure_namespace, now};
use rusqlite::{params, OptionalExtension};

impl Store {
    pub(super) fn record_image(
        &self,
        ns: &str,
        name: &str,
        image: &ArchiveImage,
        top: &str,
    ) -> Result<ImageRecord> {
        let size: i64 = image.layers.iter().map(|l| l.size as i64).sum();
        let now = now();
        self.db.tx(|tx| {
            ensure_namespace(tx, ns)?;
            for (digest, size, media) in &image.blobs {
                let real = std::fs::metadata(self.content.path(digest)?).map(|m| m.len()).unwrap_or(*size);
                tx.execute(
                    "INSERT OR IGNORE INTO content (digest, size, media_type, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![digest, real as i64, media, now],
                )?;
            }
            let labels: Option<String> = tx
                .query_row("SELECT labels FROM images WHERE namespace = ?1 AND name = ?2", params![ns, name], |r| r.get(0))
                .optional()?;
            tx.execute("DELETE FROM images WHERE namespace = ?1 AND name = ?2", params![ns, name])?;
            tx.execute(
                "INSERT INTO images (namespace, name, target_digest, target_media_type, labels, snapshot_key, size, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
                params![ns, name, image.manifest_digest, image.manifest_media_type, labels.unwrap_or_else(|| "{}".into()), top, size, now],
            )?;
            for (digest, _, _) in &image.blobs {
                tx.execute(
                    "INSERT OR IGNORE INTO content_refs (namespace, image, digest) VALUES (?1, ?2, ?3)",
                    params![ns, name, digest],
                )?;
            }
            Ok(())
        })?;
        self.get_image(ns, name)
    }

    fn image_row(r: &rusqlite::Row) -> rusqlite::Result<ImageRecord> {
        Ok(ImageRecord {
            name: r.get(0)?,
            target_digest: r.get(1)?,
            target_media_type: r.get(2)?,
            labels: parse_labels(&r.get::<_, String>(3)?),
            snapshot_key: r.get(4)?,
            size: r.get(5)?,
            created_at: r.get(6)?,
        })
    }

    /// An image by its name, or by the short name docker would expand
    /// (`busybox` → `docker.io/library/busybox:latest`).
    pub fn resolve_image(&self, ns: &str, name: &str) -> Result<ImageRecord> {
        match self.get_image(ns, name) {
            Err(Error::NotFound(m)) => {
                let last = name.rsplit('/').next().unwrap_or(name);
                let tagged = if last.contains(':') || name.contains('@') {
                    name.to_string()
                } else {
                    format!("{name}:latest")
                };
                self.get_image(ns, &archive::normalize_name(&tagged))
                    .map_err(|_| Error::NotFound(m))
            }
            other => other,
        }
    }

    pub fn get_image(&self, ns: &str, name: &str) -> Result<ImageRecord> {
        let ns = namespace(ns)?;
        self.db
            .tx(|tx| {
                Ok(tx
                    .query_row(
                        "SELECT name, target_digest, target_media_type, labels, snapshot_key, size, created_at FROM images WHERE namespace = ?1 AND name = ?2",
                        params![ns, name],
                        Self::image_row,
                    )
                    .optional()?)
            })?
            .ok_or_else(|| Error::NotFound(format!("image {name:?} does not exist")))
    }

    pub fn list_images(&self, ns: &str) -> Result<Vec<ImageRecord>> {
        let ns = namespace(ns)?;
        self.db.tx(|tx| {
            let mut stmt = tx.prepare(
                "SELECT name, target_digest, target_media_type, labels, snapshot_key, size, created_at FROM images WHERE namespace = ?1 ORDER BY name",
            )?;
            let rows = stmt.query_map(params![ns], Self::image_row)?;
            Ok(rows.collect::<std::result::Result<_, _>>()?)
        })
    }

    /// Removes the image; its content and snapshots go once no container uses them.
    pub fn delete_image(&self, ns: &str, name: &str) -> Result<()> {
        let ns = namespace(ns)?;
        let n = self.db.tx(|tx| {
            Ok(tx.execute(
                "DELETE FROM images WHERE namespace = ?1 AND name = ?2",
                params![ns, name],
            )?)
        })?;
        if n == 0 {
            return Err(Error::NotFound(format!("image {name:?} does not exist")));
        }
        self.collect()?;
        Ok(())
    }

    /// The image's config JSON (Env, Cmd, Entrypoint, WorkingDir, User).
    pub fn image_config(&self, image: &ImageRecord) -> Result<serde_json::Value> {
        let manifest: serde_json::Value =
            serde_json::from_slice(&self.content.read(&image.target_digest)?)
                .map_err(|e| Error::Corrupt(format!("manifest of {}: {e}", image.name)))?;
        let config = manifest["config"]["digest"].as_str().unwrap_or_default();
        serde_json::from_slice(&self.content.read(config)?)
            .map_err(|e| Error::Corrupt(format!("config of {}: {e}", image.name)))
    }
}
