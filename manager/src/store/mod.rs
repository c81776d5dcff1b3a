//! The manager's state as one object: metadata, content and snapshots, and the rules
//! that keep them consistent: images and containers reference content and snapshots;
//! what nothing references is collected, rows first (one transaction), files after.
//! A crash between the two leaves files without rows, which recovery removes.
//!
//! What is kept where is `crate::storage`'s (the database, the blobs, the snapshot
//! trees); here, one file per thing stored, each with its SQL: `images` (image rows), `import`
//! (an archive into images), `pull` (a registry's image into images), `layers` (layers
//! into committed snapshots), `containers`, `snapshots` (snapshots through the API),
//! `content` (content rows through the API), `collection`, `recovery`, `stats`.

mod collection;
mod containers;
mod content;
mod images;
mod import;
mod layers;
mod pull;
mod recovery;
mod snapshots;
pub mod stats;

use crate::error::{check_id, Result};
use crate::limits::Limits;
use crate::spec::ProcessRequest;
use crate::storage::blobs::ContentStore;
use crate::storage::db::Db;
use crate::storage::trees::Snapshotter;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

pub type Labels = BTreeMap<String, String>;

#[derive(Debug, Clone)]
pub struct ImageRecord {
    pub name: String,
    pub target_digest: String,
    pub target_media_type: String,
    pub labels: Labels,
    pub snapshot_key: String,
    pub size: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct ContainerRecord {
    pub id: String,
    pub labels: Labels,
    pub image: String,
    pub runtime_name: String,
    pub runtime_options: Vec<u8>,
    pub spec: Vec<u8>,
    pub snapshotter: String,
    pub snapshot_key: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a new container is made of.
#[derive(Debug, Clone, Default)]
pub struct NewContainer {
    pub id: String,
    pub image: String,
    pub runtime_name: String,
    pub runtime_options: Vec<u8>,
    pub labels: Labels,
    pub process: ProcessRequest,
}

pub struct Store {
    pub db: Db,
    pub content: ContentStore,
    pub snapshots: Snapshotter,
    /// Where imports mount the snapshots they unpack into.
    mnt: PathBuf,
    /// One import at a time. Creates and deletes never wait for it: a collection asked
    /// for meanwhile waits instead, and runs when the import is done (it could take the
    /// layers and blobs the import has made but not yet recorded).
    import_lock: Mutex<()>,
    collect_after_import: AtomicBool,
    pub limits: Limits,
    /// Containers' cgroups go to PARENT/NAMESPACE/ID.
    pub cgroup_parent: String,
    /// Pulls and imports under way, for their clients' progress polls.
    pub jobs: crate::progress::Jobs,
    /// Where registries' hosts.toml directories are (`--registry-config`).
    pub registry_config: PathBuf,
}

pub const DEFAULT_NAMESPACE: &str = "default";

pub fn namespace(ns: &str) -> Result<&str> {
    if ns.is_empty() {
        return Ok(DEFAULT_NAMESPACE);
    }
    check_id("namespace", ns)?;
    Ok(ns)
}

fn labels_json(l: &Labels) -> String {
    serde_json::to_string(l).unwrap_or_else(|_| "{}".into())
}

fn parse_labels(s: &str) -> Labels {
    serde_json::from_str(s).unwrap_or_default()
}

impl Store {
    pub fn open(root: &Path, force_native: bool) -> Result<Store> {
        std::fs::create_dir_all(root)
            .map_err(|e| crate::error::io(format!("creating {}", root.display()), e))?;
        let mnt = root.join("mnt");
        std::fs::create_dir_all(&mnt).map_err(|e| crate::error::io("creating mnt", e))?;
        Ok(Store {
            db: Db::open(&root.join("meta.db"))?,
            content: ContentStore::open(&root.join("content"))?,
            snapshots: Snapshotter::open(&root.join("snapshots"), force_native)?,
            mnt,
            import_lock: Mutex::new(()),
            collect_after_import: AtomicBool::new(false),
            limits: Limits::default(),
            cgroup_parent: "/skiff".into(),
            jobs: Default::default(),
            registry_config: crate::registry::hosts::DEFAULT_CONFIG_DIR.into(),
        })
    }
}
