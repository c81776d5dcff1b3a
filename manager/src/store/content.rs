//! Content rows: what the content store holds, as the API reports it: per namespace,
//! the blobs its images reference (the store keeps one copy of each for all).

use super::{namespace, Store};
use crate::error::{Error, Result};
use rusqlite::{params, OptionalExtension};

/// (digest, size, media type, created at)
pub type ContentRow = (String, i64, String, i64);

const IN_NAMESPACE: &str = "SELECT digest, size, media_type, created_at FROM content WHERE digest IN (SELECT digest FROM content_refs WHERE namespace = ?1)";

impl Store {
    pub fn content_info(&self, ns: &str, digest: &str) -> Result<ContentRow> {
        let ns = namespace(ns)?;
        crate::storage::blobs::parse_digest(digest)?;
        self.db
            .tx(|tx| {
                Ok(tx
                    .query_row(
                        &format!("{IN_NAMESPACE} AND digest = ?2"),
                        params![ns, digest],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )
                    .optional()?)
            })?
            .ok_or_else(|| Error::NotFound(format!("blob {digest} is not in the content store")))
    }

    pub fn list_content(&self, ns: &str) -> Result<Vec<ContentRow>> {
        let ns = namespace(ns)?;
        self.db.tx(|tx| {
            let mut stmt = tx.prepare(&format!("{IN_NAMESPACE} ORDER BY digest"))?;
            let rows = stmt.query_map(params![ns], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
            Ok(rows.collect::<std::result::Result<_, _>>()?)
        })
    }

    /// Whether an image of namespace `ns` references `digest`.
    pub(super) fn namespace_has(&self, ns: &str, digest: &str) -> Result<bool> {
        let sql = "SELECT 1 FROM content_refs WHERE namespace = ?1 AND digest = ?2";
        self.db
            .tx(|tx| crate::storage::db::exists(tx, sql, params![ns, digest]))
    }

    /// Removes the blobs of `digests` that have no row (what an import brought and no
    /// image it recorded names).
    pub(super) fn remove_unrecorded(&self, digests: &[String]) {
        for d in digests {
            let recorded = self.db.tx(|tx| {
                Ok(tx
                    .query_row(
                        "SELECT 1 FROM content WHERE digest = ?1",
                        params![d],
                        |_| Ok(()),
                    )
                    .optional()?
                    .is_some())
            });
            if let Ok(false) = recorded {
                let _ = self.content.remove(d);
            }
        }
    }
}
