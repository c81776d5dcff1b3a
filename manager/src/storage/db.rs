//! The metadata database: SQLite in WAL mode with foreign keys, its schema applied by
//! numbered migrations (the number kept in `PRAGMA user_version`).

use crate::error::Result;
use rusqlite::{Connection, Transaction};
use std::path::Path;
use std::sync::Mutex;

/// Each entry moves the schema one version up; never edit one that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: namespaces, content, snapshots, images and the content they reference, containers.
    r#"
    CREATE TABLE namespaces (
        name TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE content (
        digest TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        media_type TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE snapshots (
        namespace TEXT NOT NULL REFERENCES namespaces(name),
        key TEXT NOT NULL,
        dir TEXT NOT NULL UNIQUE,
        parent TEXT,
        kind TEXT NOT NULL CHECK (kind IN ('active', 'view', 'committed')),
        created_at INTEGER NOT NULL,
        PRIMARY KEY (namespace, key),
        FOREIGN KEY (namespace, parent) REFERENCES snapshots(namespace, key)
    );
    CREATE TABLE images (
        namespace TEXT NOT NULL REFERENCES namespaces(name),
        name TEXT NOT NULL,
        target_digest TEXT NOT NULL REFERENCES content(digest),
        target_media_type TEXT NOT NULL,
        labels TEXT NOT NULL DEFAULT '{}',
        snapshot_key TEXT NOT NULL,
        size INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (namespace, name),
        FOREIGN KEY (namespace, snapshot_key) REFERENCES snapshots(namespace, key)
    );
    CREATE TABLE content_refs (
        namespace TEXT NOT NULL,
        image TEXT NOT NULL,
        digest TEXT NOT NULL REFERENCES content(digest),
        PRIMARY KEY (namespace, image, digest),
        FOREIGN KEY (namespace, image) REFERENCES images(namespace, name) ON DELETE CASCADE
    );
    CREATE TABLE containers (
        namespace TEXT NOT NULL REFERENCES namespaces(name),
        id TEXT NOT NULL,
        labels TEXT NOT NULL DEFAULT '{}',
        image TEXT NOT NULL,
        runtime_name TEXT NOT NULL,
        runtime_options BLOB NOT NULL,
        spec BLOB NOT NULL,
        snapshotter TEXT NOT NULL,
        snapshot_key TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (namespace, id),
        FOREIGN KEY (namespace, snapshot_key) REFERENCES snapshots(namespace, key)
    );
    "#,
    // 2: tasks, one per container at most: which shim serves it, and how it ended.
    r#"
    CREATE TABLE tasks (
        namespace TEXT NOT NULL,
        container_id TEXT NOT NULL,
        runtime_path TEXT NOT NULL,
        address TEXT NOT NULL,
        version INTEGER NOT NULL,
        bundle TEXT NOT NULL,
        pid INTEGER NOT NULL,
        status TEXT NOT NULL,
        exit_status INTEGER NOT NULL DEFAULT 0,
        exited_at INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (namespace, container_id),
        FOREIGN KEY (namespace, container_id) REFERENCES containers(namespace, id)
    );
    "#,
];

pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

pub struct Db {
    conn: Mutex<Connection>,
}

impl Db {
    pub fn open(path: &Path) -> Result<Db> {
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        migrate(&mut conn)?;
        Ok(Db {
            conn: Mutex::new(conn),
        })
    }

    /// Runs `f` in one transaction: all of its changes, or none.
    pub fn tx<T>(&self, f: impl FnOnce(&Transaction) -> Result<T>) -> Result<T> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction()?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let current: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current > SCHEMA_VERSION {
        return Err(crate::error::Error::FailedPrecondition(format!(
            "the database has schema version {current}, newer than this skiffd's {SCHEMA_VERSION}"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// Nanoseconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// A protobuf timestamp in nanoseconds since the epoch; 0 for Go's zero time (year 1)
/// and anything else before the epoch.
pub fn timestamp_nanos(t: Option<&protobuf::well_known_types::timestamp::Timestamp>) -> i64 {
    t.filter(|t| t.seconds > 0)
        .and_then(|t| {
            t.seconds
                .checked_mul(1_000_000_000)?
                .checked_add(t.nanos as i64)
        })
        .unwrap_or(0)
}

/// Whether `sql` (a `SELECT 1 ...`) finds a row.
pub fn exists(tx: &Transaction, sql: &str, params: impl rusqlite::Params) -> Result<bool> {
    use rusqlite::OptionalExtension;
    Ok(tx.query_row(sql, params, |_| Ok(())).optional()?.is_some())
}

pub fn ensure_namespace(tx: &Transaction, ns: &str) -> Result<()> {
    tx.execute(
        "INSERT OR IGNORE INTO namespaces (name, created_at) VALUES (?1, ?2)",
        rusqlite::params![ns, now()],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_foreign_keys_hold() {
        let dir = std::env::temp_dir().join(format!("skiff-db-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("meta.db");
        let db = Db::open(&path).unwrap();
        drop(db);
        let db = Db::open(&path).unwrap();
        let version: usize = db
            .tx(|tx| Ok(tx.pragma_query_value(None, "user_version", |r| r.get(0))?))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let bad = db.tx(|tx| {
            tx.execute(
                "INSERT INTO snapshots VALUES ('nope', 'k', 'd', NULL, 'active', 0)",
                [],
            )?;
            Ok(())
        });
        assert!(
            bad.is_err(),
            "a snapshot in an unknown namespace was accepted"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
