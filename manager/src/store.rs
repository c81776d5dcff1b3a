//! The manager's state as one object: metadata, content and snapshots, and the rules
//! that keep them consistent: images and containers reference content and snapshots;
//! what nothing references is collected, rows first (one transaction), files after.
//! A crash between the two leaves files without rows, which [`Store::recover`] removes.

use crate::content::ContentStore;
use crate::db::{ensure_namespace, now, Db};
use crate::error::{check_id, check_name, Error, Result};
use crate::import::{self, ArchiveImage};
use crate::snapshots::{Info, Kind, Snapshotter};
use rusqlite::{params, OptionalExtension, Transaction};
use sha2::{Digest, Sha256};
use skiff_protos::mount::Mount;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
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
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub labels: Labels,
    pub terminal: bool,
    pub memory_limit: i64,
    /// Bind mounts, "SOURCE:DESTINATION[:ro]".
    pub mounts: Vec<String>,
}

pub struct Store {
    pub db: Db,
    pub content: ContentStore,
    pub snapshots: Snapshotter,
    /// Where imports mount the snapshots they unpack into.
    mnt: PathBuf,
    /// Held by imports and collections: a collection must not take the snapshots and
    /// blobs an import made before the import recorded its image.
    gc_lock: Mutex<()>,
    /// Containers' cgroups go to PARENT/NAMESPACE/ID.
    pub cgroup_parent: String,
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
            gc_lock: Mutex::new(()),
            cgroup_parent: "/skiff".into(),
        })
    }

    // Images

    pub fn import(&self, ns: &str, path: &Path, name: Option<&str>) -> Result<Vec<ImageRecord>> {
        let ns = namespace(ns)?;
        if let Some(n) = name {
            check_name("image name", n, 512)?;
        }
        let _gc = self.gc_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut ingested = Vec::new();
        let result = self.import_locked(ns, path, name, &mut ingested);
        if result.is_err() {
            // Take out what this import brought and nothing references, rows and files.
            let _ = self.collect_locked();
            let referenced = self.referenced_digests().unwrap_or_default();
            for d in ingested.iter().filter(|d| !referenced.contains(*d)) {
                let _ = self.content.remove(d);
            }
        }
        result
    }

    fn import_locked(
        &self,
        ns: &str,
        path: &Path,
        name: Option<&str>,
        ingested: &mut Vec<String>,
    ) -> Result<Vec<ImageRecord>> {
        let images = import::read(path, &self.content, ingested)?;
        if name.is_some() && images.len() > 1 {
            return Err(Error::InvalidArgument(format!(
                "{} holds {} images: --name applies to one",
                path.display(),
                images.len()
            )));
        }
        let mut out = Vec::new();
        for image in images {
            let name = name
                .map(str::to_string)
                .or_else(|| image.name.clone())
                .ok_or_else(|| {
                    Error::InvalidArgument(
                        "the archive names no image: give one with --name".into(),
                    )
                })?;
            check_name("image name", &name, 512)?;
            let top = self.unpack(ns, &image)?;
            out.push(self.record_image(ns, &name, &image, &top)?);
        }
        Ok(out)
    }

    /// Unpacks each layer not yet unpacked into a committed snapshot named by its chain
    /// id; returns the key of the top one.
    fn unpack(&self, ns: &str, image: &ArchiveImage) -> Result<String> {
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

    fn record_image(
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
                self.get_image(ns, &import::normalize_name(&tagged))
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
        let _gc = self.gc_lock.lock().unwrap_or_else(|p| p.into_inner());
        let n = self.db.tx(|tx| {
            Ok(tx.execute(
                "DELETE FROM images WHERE namespace = ?1 AND name = ?2",
                params![ns, name],
            )?)
        })?;
        if n == 0 {
            return Err(Error::NotFound(format!("image {name:?} does not exist")));
        }
        self.collect_locked()?;
        Ok(())
    }

    // Containers

    pub fn create_container(&self, ns: &str, c: NewContainer) -> Result<ContainerRecord> {
        let ns = namespace(ns)?;
        check_id("container id", &c.id)?;
        let image = self.resolve_image(ns, &c.image)?;
        let config = self.image_config(&image)?;
        let spec = crate::spec::generate(
            &c,
            &config,
            &format!("{}/{ns}/{}", self.cgroup_parent, c.id),
        )?;
        let runtime = if c.runtime_name.is_empty() {
            "io.containerd.skiff.v2".to_string()
        } else {
            c.runtime_name.clone()
        };
        let now = now();
        let key = c.id.clone();
        let snapshotter = self.snapshots.driver.name();
        let _gc = self.gc_lock.lock().unwrap_or_else(|p| p.into_inner());
        let dir = std::cell::RefCell::new(None);
        let result = self.db.tx(|tx| {
            ensure_namespace(tx, ns)?;
            let exists = tx
                .query_row("SELECT 1 FROM containers WHERE namespace = ?1 AND id = ?2", params![ns, c.id], |_| Ok(()))
                .optional()?
                .is_some();
            if exists {
                return Err(Error::AlreadyExists(format!("container {:?} already exists", c.id)));
            }
            let d = self.snapshots.make(tx, ns, &key, Some(&image.snapshot_key))?;
            *dir.borrow_mut() = Some(d.clone());
            self.snapshots.record(tx, ns, &key, Some(&image.snapshot_key), Kind::Active, &d)?;
            tx.execute(
                "INSERT INTO containers (namespace, id, labels, image, runtime_name, runtime_options, spec, snapshotter, snapshot_key, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
                params![ns, c.id, labels_json(&c.labels), c.image, runtime, c.runtime_options, spec, snapshotter, key, now],
            )?;
            Ok(())
        });
        if let Err(e) = result {
            if let Some(d) = dir.into_inner() {
                self.snapshots.remove_dir(&d);
            }
            return Err(e);
        }
        self.get_container(ns, &c.id)
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

    fn container_row(r: &rusqlite::Row) -> rusqlite::Result<ContainerRecord> {
        Ok(ContainerRecord {
            id: r.get(0)?,
            labels: parse_labels(&r.get::<_, String>(1)?),
            image: r.get(2)?,
            runtime_name: r.get(3)?,
            runtime_options: r.get(4)?,
            spec: r.get(5)?,
            snapshotter: r.get(6)?,
            snapshot_key: r.get(7)?,
            created_at: r.get(8)?,
            updated_at: r.get(9)?,
        })
    }

    const CONTAINER_COLUMNS: &'static str =
        "id, labels, image, runtime_name, runtime_options, spec, snapshotter, snapshot_key, created_at, updated_at";

    pub fn get_container(&self, ns: &str, id: &str) -> Result<ContainerRecord> {
        let ns = namespace(ns)?;
        self.db
            .tx(|tx| {
                Ok(tx
                    .query_row(
                        &format!(
                            "SELECT {} FROM containers WHERE namespace = ?1 AND id = ?2",
                            Self::CONTAINER_COLUMNS
                        ),
                        params![ns, id],
                        Self::container_row,
                    )
                    .optional()?)
            })?
            .ok_or_else(|| Error::NotFound(format!("container {id:?} does not exist")))
    }

    /// Containers whose labels match every filter (`key=value`, or `key` for presence).
    pub fn list_containers(&self, ns: &str, filters: &[String]) -> Result<Vec<ContainerRecord>> {
        let ns = namespace(ns)?;
        let all: Vec<ContainerRecord> = self.db.tx(|tx| {
            let mut stmt = tx.prepare(&format!(
                "SELECT {} FROM containers WHERE namespace = ?1 ORDER BY created_at",
                Self::CONTAINER_COLUMNS
            ))?;
            let rows = stmt.query_map(params![ns], Self::container_row)?;
            Ok(rows.collect::<std::result::Result<_, _>>()?)
        })?;
        Ok(all
            .into_iter()
            .filter(|c| {
                filters.iter().all(|f| match f.split_once('=') {
                    Some((k, v)) => c.labels.get(k).map(|x| x == v).unwrap_or(false),
                    None => c.labels.contains_key(f),
                })
            })
            .collect())
    }

    /// Sets labels; an empty value removes one.
    pub fn label_container(&self, ns: &str, id: &str, set: &Labels) -> Result<ContainerRecord> {
        let ns = namespace(ns)?;
        for k in set.keys() {
            check_name("label key", k, 256)?;
        }
        self.db.tx(|tx| {
            let labels: String = tx
                .query_row("SELECT labels FROM containers WHERE namespace = ?1 AND id = ?2", params![ns, id], |r| r.get(0))
                .optional()?
                .ok_or_else(|| Error::NotFound(format!("container {id:?} does not exist")))?;
            let mut labels = parse_labels(&labels);
            for (k, v) in set {
                if v.is_empty() {
                    labels.remove(k);
                } else {
                    labels.insert(k.clone(), v.clone());
                }
            }
            tx.execute(
                "UPDATE containers SET labels = ?3, updated_at = ?4 WHERE namespace = ?1 AND id = ?2",
                params![ns, id, labels_json(&labels), now()],
            )?;
            Ok(())
        })?;
        self.get_container(ns, id)
    }

    /// Removes the container and its snapshot.
    pub fn delete_container(&self, ns: &str, id: &str) -> Result<()> {
        let ns = namespace(ns)?;
        let _gc = self.gc_lock.lock().unwrap_or_else(|p| p.into_inner());
        let dir = self.db.tx(|tx| {
            let key: String = tx
                .query_row(
                    "SELECT snapshot_key FROM containers WHERE namespace = ?1 AND id = ?2",
                    params![ns, id],
                    |r| r.get(0),
                )
                .optional()?
                .ok_or_else(|| Error::NotFound(format!("container {id:?} does not exist")))?;
            let has_task = tx
                .query_row(
                    "SELECT 1 FROM tasks WHERE namespace = ?1 AND container_id = ?2",
                    params![ns, id],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
            if has_task {
                return Err(Error::FailedPrecondition(format!(
                    "container {id:?} has a task: delete the task first"
                )));
            }
            tx.execute(
                "DELETE FROM containers WHERE namespace = ?1 AND id = ?2",
                params![ns, id],
            )?;
            self.snapshots.delete_row(tx, ns, &key)
        })?;
        self.snapshots.remove_dir(&dir);
        // The image may be gone already: its layers go with its last container.
        self.collect_locked()?;
        Ok(())
    }

    // Snapshots

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

    // Content

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

    // Collection and recovery

    fn referenced_digests(&self) -> Result<HashSet<String>> {
        self.db.tx(|tx| {
            let mut stmt = tx.prepare("SELECT DISTINCT digest FROM content_refs")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<std::result::Result<_, _>>()?)
        })
    }

    /// Deletes, in one transaction, the rows of content no image references and of
    /// committed snapshots no image or container needs; then their files.
    pub fn collect(&self) -> Result<(usize, usize)> {
        let _gc = self.gc_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.collect_locked()
    }

    fn collect_locked(&self) -> Result<(usize, usize)> {
        let (blobs, dirs) = self.db.tx(|tx| {
            let mut stmt = tx.prepare(
                "SELECT digest FROM content WHERE digest NOT IN (SELECT digest FROM content_refs)",
            )?;
            let blobs: Vec<String> = stmt
                .query_map([], |r| r.get(0))?
                .collect::<std::result::Result<_, _>>()?;
            drop(stmt);
            for d in &blobs {
                tx.execute("DELETE FROM content WHERE digest = ?1", params![d])?;
            }
            let dirs = collect_snapshots(tx)?;
            Ok((blobs, dirs))
        })?;
        for d in &blobs {
            let _ = self.content.remove(d);
        }
        for d in &dirs {
            self.snapshots.remove_dir(d);
        }
        Ok((blobs.len(), dirs.len()))
    }

    /// At start: unmounts what a crashed import left mounted, drops its unfinished
    /// snapshots, collects, and removes files and directories without rows.
    pub fn recover(&self) -> Result<Vec<String>> {
        let _gc = self.gc_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut done = Vec::new();
        for m in crate::mount::mounts_under(&self.mnt) {
            let _ = crate::mount::unmount(&m);
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
        let (blobs, dirs) = self.collect_locked()?;
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

/// Deletes committed snapshot rows not reachable (through parents) from an image, a
/// container or an active or view snapshot; returns their directories.
fn collect_snapshots(tx: &Transaction) -> Result<Vec<String>> {
    let mut stmt = tx.prepare("SELECT namespace, key, parent, kind, dir FROM snapshots")?;
    let all: Vec<(String, String, Option<String>, String, String)> = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<std::result::Result<_, _>>()?;
    drop(stmt);
    let mut roots: Vec<(String, String)> = Vec::new();
    for table in ["images", "containers"] {
        let mut stmt = tx.prepare(&format!("SELECT namespace, snapshot_key FROM {table}"))?;
        let rows: Vec<(String, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<std::result::Result<_, _>>()?;
        roots.extend(rows);
    }
    roots.extend(
        all.iter()
            .filter(|s| s.3 != "committed")
            .map(|s| (s.0.clone(), s.1.clone())),
    );
    let parent_of: std::collections::HashMap<(String, String), Option<String>> = all
        .iter()
        .map(|s| ((s.0.clone(), s.1.clone()), s.2.clone()))
        .collect();
    let mut live: HashSet<(String, String)> = HashSet::new();
    for root in roots {
        let mut next = Some(root);
        while let Some(k) = next {
            if !live.insert(k.clone()) {
                break;
            }
            next = parent_of
                .get(&k)
                .cloned()
                .flatten()
                .map(|p| (k.0.clone(), p));
        }
    }
    // Children before parents, so the parent foreign key holds at every delete.
    let mut dead: Vec<&(String, String, Option<String>, String, String)> = all
        .iter()
        .filter(|s| !live.contains(&(s.0.clone(), s.1.clone())))
        .collect();
    let depth = |s: &(String, String, Option<String>, String, String)| {
        let mut d = 0;
        let mut next = s.2.clone();
        while let Some(p) = next {
            d += 1;
            next = parent_of.get(&(s.0.clone(), p)).cloned().flatten();
        }
        d
    };
    dead.sort_by_key(|s| std::cmp::Reverse(depth(s)));
    let mut dirs = Vec::new();
    for s in dead {
        tx.execute(
            "DELETE FROM snapshots WHERE namespace = ?1 AND key = ?2",
            params![s.0, s.1],
        )?;
        dirs.push(s.4.clone());
    }
    Ok(dirs)
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
