//! What the metrics endpoint reads from the metadata at each scrape: containers by the
//! state of their task, tasks by state, images, content bytes.

use super::Store;
use crate::error::Result;

/// What a scrape reads: (metric, help, labels, value) gauges.
pub type Gauges = Vec<(&'static str, &'static str, Vec<(String, String)>, f64)>;

impl Store {
    pub fn gauges(&self) -> Result<Gauges> {
        self.db.tx(|tx| {
            let mut out: Gauges = Vec::new();
            let mut q =
                |sql: &str, name: &'static str, help: &'static str, keys: &[&str]| -> Result<()> {
                    let mut stmt = tx.prepare(sql)?;
                    let rows = stmt.query_map([], |r| {
                        let mut labels = Vec::new();
                        for (i, k) in keys.iter().enumerate() {
                            labels.push((k.to_string(), r.get::<_, String>(i)?));
                        }
                        Ok((labels, r.get::<_, f64>(keys.len())?))
                    })?;
                    for row in rows {
                        let (labels, v) = row?;
                        out.push((name, help, labels, v));
                    }
                    Ok(())
                };
            q(
                "SELECT c.namespace, COALESCE(t.status, 'no task'), COUNT(*) FROM containers c \
                 LEFT JOIN tasks t ON t.namespace = c.namespace AND t.container_id = c.id \
                 GROUP BY 1, 2",
                "skiff_containers",
                "Containers, by namespace and the state of their task.",
                &["namespace", "state"],
            )?;
            q(
                "SELECT namespace, status, COUNT(*) FROM tasks GROUP BY 1, 2",
                "skiff_tasks",
                "Tasks, by namespace and state (as skiffd last recorded it).",
                &["namespace", "state"],
            )?;
            q(
                "SELECT namespace, COUNT(*) FROM images GROUP BY 1",
                "skiff_images",
                "Images, by namespace.",
                &["namespace"],
            )?;
            q(
                "SELECT COALESCE(SUM(size), 0) FROM content",
                "skiff_content_bytes",
                "Bytes of the blobs in the content store.",
                &[],
            )?;
            q(
                "SELECT COUNT(*) FROM content",
                "skiff_content_blobs",
                "Blobs in the content store.",
                &[],
            )?;
            Ok(out)
        })
    }
}
