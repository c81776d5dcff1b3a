//! Content rows: what the content store holds, as the API reports it.

use super::Store;
use crate::error::{Error, Result};
use rusqlite::{params, OptionalExtension};
use std::collections::HashSet;

impl Store {
    pub fn content_info(&self, digest: &str) -> Result<(String, i64, String, i64)> {
        crate::content::parse_digest(digest)?;
        self.db
            .tx(|tx| {
                Ok(tx
                    .query_row(
                        "SELECT digest, size, media_type, created_at FROM content WHERE digest = ?1",
                        params![digest],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )
                    .optional()?)
            })?
            .ok_or_else(|| Error::NotFound(format!("blob {digest} is not in the content store")))
    }

    pub fn list_content(&self) -> Result<Vec<(String, i64, String, i64)>> {
        self.db.tx(|tx| {
            let mut stmt = tx.prepare(
                "SELECT digest, size, media_type, created_at FROM content ORDER BY digest",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
            Ok(rows.collect::<std::result::Result<_, _>>()?)
        })
    }

    pub(super) fn referenced_digests(&self) -> Result<HashSet<String>> {
        self.db.tx(|tx| {
            let mut stmt = tx.prepare("SELECT DISTINCT digest FROM content_refs")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<std::result::Result<_, _>>()?)
        })
    }
}
