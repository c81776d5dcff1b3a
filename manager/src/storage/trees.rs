//! Snapshots: directory trees in parent chains, as containerd's snapshotters keep them.
//! overlayfs when the kernel mounts it here (layers shared, an upper dir per active
//! snapshot), otherwise a native driver that copies the parent's tree.
//!
//! A snapshot's directory is made before its row is written and removed after its row
//! is deleted, so a crash leaves at most a directory without a row, which recovery
//! removes.

use crate::error::{check_name, io, Error, Result};
use crate::storage::db::now;
use rusqlite::{params, OptionalExtension, Transaction};
use skiff_protos::mount::Mount;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    Overlay,
    Native,
}

impl Driver {
    pub fn name(self) -> &'static str {
        match self {
            Driver::Overlay => "overlayfs",
            Driver::Native => "native",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Active,
    View,
    Committed,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Active => "active",
            Kind::View => "view",
            Kind::Committed => "committed",
        }
    }
    fn parse(s: &str) -> Kind {
        match s {
            "view" => Kind::View,
            "committed" => Kind::Committed,
            _ => Kind::Active,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Info {
    pub key: String,
    pub parent: Option<String>,
    pub kind: Kind,
    pub dir: String,
    pub created_at: i64,
}

pub struct Snapshotter {
    root: PathBuf,
    pub driver: Driver,
}

static DIR_SEQ: AtomicU64 = AtomicU64::new(0);

impl Snapshotter {
    /// Uses overlayfs if a test mount of it works under `root`, else the native driver.
    pub fn open(root: &Path, force_native: bool) -> Result<Snapshotter> {
        fs::create_dir_all(root).map_err(|e| io(format!("creating {}", root.display()), e))?;
        let driver = if !force_native && overlay_works(root) {
            Driver::Overlay
        } else {
            Driver::Native
        };
        Ok(Snapshotter {
            root: root.to_path_buf(),
            driver,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn fs_of(&self, dir: &str) -> PathBuf {
        self.root.join(dir).join("fs")
    }

    pub fn get(&self, tx: &Transaction, ns: &str, key: &str) -> Result<Info> {
        tx.query_row(
            "SELECT key, parent, kind, dir, created_at FROM snapshots WHERE namespace = ?1 AND key = ?2",
            params![ns, key],
            |r| {
                Ok(Info {
                    key: r.get(0)?,
                    parent: r.get(1)?,
                    kind: Kind::parse(&r.get::<_, String>(2)?),
                    dir: r.get(3)?,
                    created_at: r.get(4)?,
                })
            },
        )
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("snapshot {key:?} does not exist")))
    }

    pub fn exists(&self, tx: &Transaction, ns: &str, key: &str) -> Result<bool> {
        crate::storage::db::exists(
            tx,
            "SELECT 1 FROM snapshots WHERE namespace = ?1 AND key = ?2",
            params![ns, key],
        )
    }

    /// A new directory for a snapshot, not yet recorded.
    fn new_dir(&self) -> Result<String> {
        let n = DIR_SEQ.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}-{}-{n}", now(), std::process::id());
        let dir = self.root.join(&name);
        fs::create_dir_all(dir.join("fs")).map_err(|e| io("creating a snapshot", e))?;
        if self.driver == Driver::Overlay {
            fs::create_dir_all(dir.join("work")).map_err(|e| io("creating a snapshot", e))?;
        }
        Ok(name)
    }

    /// Checks, in the caller's transaction, that snapshot `key` may be made on
    /// `parent` (committed); returns the parent's directory.
    pub fn check_new(
        &self,
        tx: &Transaction,
        ns: &str,
        key: &str,
        parent: Option<&str>,
    ) -> Result<Option<String>> {
        check_name("snapshot key", key, 512)?;
        if self.exists(tx, ns, key)? {
            return Err(Error::AlreadyExists(format!(
                "snapshot {key:?} already exists"
            )));
        }
        let Some(p) = parent else {
            return Ok(None);
        };
        let info = self.get(tx, ns, p)?;
        if info.kind != Kind::Committed {
            return Err(Error::FailedPrecondition(format!(
                "parent {p:?} is {}, not committed",
                info.kind.as_str()
            )));
        }
        Ok(Some(info.dir))
    }

    /// Makes the directory of a new snapshot, outside any transaction: the native
    /// driver copies the parent's tree here (and syncs it). The caller records it with
    /// [`Snapshotter::record`], or removes it.
    pub fn make_dir(&self, parent_dir: Option<&str>) -> Result<String> {
        let dir = self.new_dir()?;
        if let (Driver::Native, Some(pd)) = (self.driver, parent_dir) {
            if let Err(e) = copy_tree(&self.fs_of(pd), &self.fs_of(&dir)) {
                let _ = fs::remove_dir_all(self.root.join(&dir));
                return Err(e);
            }
        }
        Ok(dir)
    }

    pub fn record(
        &self,
        tx: &Transaction,
        ns: &str,
        key: &str,
        parent: Option<&str>,
        kind: Kind,
        dir: &str,
    ) -> Result<()> {
        crate::storage::db::ensure_namespace(tx, ns)?;
        tx.execute(
            "INSERT INTO snapshots (namespace, key, dir, parent, kind, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![ns, key, dir, parent, kind.as_str(), now()],
        )?;
        Ok(())
    }

    /// The dirs of `key`'s parents, nearest first.
    fn parent_dirs(&self, tx: &Transaction, ns: &str, info: &Info) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut next = info.parent.clone();
        while let Some(p) = next {
            let i = self.get(tx, ns, &p)?;
            out.push(i.dir);
            next = i.parent;
        }
        Ok(out)
    }

    /// What to mount to see the snapshot (what a shim's Create receives).
    pub fn mounts(&self, tx: &Transaction, ns: &str, key: &str) -> Result<Vec<Mount>> {
        let info = self.get(tx, ns, key)?;
        let own = self.fs_of(&info.dir).display().to_string();
        let bind = |source: String, ro: bool| Mount {
            type_: "bind".into(),
            source,
            options: vec!["rbind".into(), if ro { "ro".into() } else { "rw".into() }],
            ..Default::default()
        };
        let ro = info.kind != Kind::Active;
        if self.driver == Driver::Native {
            return Ok(vec![bind(own, ro)]);
        }
        let parents: Vec<String> = self
            .parent_dirs(tx, ns, &info)?
            .iter()
            .map(|d| self.fs_of(d).display().to_string())
            .collect();
        Ok(match (info.kind, parents.len()) {
            (Kind::Active, 0) | (Kind::Committed, _) => vec![bind(own, ro)],
            (Kind::View, 0) => vec![bind(own, true)],
            (Kind::View, 1) => vec![bind(parents[0].clone(), true)],
            (Kind::View, _) => vec![Mount {
                type_: "overlay".into(),
                source: "overlay".into(),
                options: vec!["ro".into(), format!("lowerdir={}", parents.join(":"))],
                ..Default::default()
            }],
            (Kind::Active, _) => vec![Mount {
                type_: "overlay".into(),
                source: "overlay".into(),
                options: vec![
                    format!(
                        "workdir={}",
                        self.root.join(&info.dir).join("work").display()
                    ),
                    format!("upperdir={own}"),
                    format!("lowerdir={}", parents.join(":")),
                ],
                ..Default::default()
            }],
        })
    }

    /// Turns active snapshot `key` into committed snapshot `name`.
    pub fn commit(&self, tx: &Transaction, ns: &str, name: &str, key: &str) -> Result<()> {
        check_name("snapshot name", name, 512)?;
        let info = self.get(tx, ns, key)?;
        if info.kind != Kind::Active {
            return Err(Error::FailedPrecondition(format!(
                "snapshot {key:?} is {}, only active ones commit",
                info.kind.as_str()
            )));
        }
        if self.exists(tx, ns, name)? {
            return Err(Error::AlreadyExists(format!(
                "snapshot {name:?} already exists"
            )));
        }
        // An active snapshot has no children, so its key can change in place.
        tx.execute(
            "UPDATE snapshots SET key = ?3, kind = 'committed', created_at = ?4 WHERE namespace = ?1 AND key = ?2",
            params![ns, key, name, now()],
        )?;
        Ok(())
    }

    /// Deletes the row of `key` (refused while it has children); returns its directory,
    /// to be removed with [`Snapshotter::remove_dir`] once the transaction committed.
    pub fn delete_row(&self, tx: &Transaction, ns: &str, key: &str) -> Result<String> {
        let info = self.get(tx, ns, key)?;
        let children: i64 = tx.query_row(
            "SELECT COUNT(*) FROM snapshots WHERE namespace = ?1 AND parent = ?2",
            params![ns, key],
            |r| r.get(0),
        )?;
        if children > 0 {
            return Err(Error::FailedPrecondition(format!(
                "snapshot {key:?} has {children} child snapshot(s)"
            )));
        }
        let users: i64 = tx.query_row(
            "SELECT (SELECT COUNT(*) FROM containers WHERE namespace = ?1 AND snapshot_key = ?2) + (SELECT COUNT(*) FROM images WHERE namespace = ?1 AND snapshot_key = ?2)",
            params![ns, key],
            |r| r.get(0),
        )?;
        if users > 0 {
            return Err(Error::FailedPrecondition(format!(
                "snapshot {key:?} is in use by a container or image"
            )));
        }
        tx.execute(
            "DELETE FROM snapshots WHERE namespace = ?1 AND key = ?2",
            params![ns, key],
        )?;
        Ok(info.dir)
    }

    pub fn remove_dir(&self, dir: &str) {
        let path = self.root.join(dir);
        for m in skiff_mount::mounts_under(&path) {
            let _ = skiff_mount::unmount_all(&m);
        }
        let _ = fs::remove_dir_all(path);
    }

    pub fn list(&self, tx: &Transaction, ns: &str) -> Result<Vec<Info>> {
        let mut stmt = tx.prepare(
            "SELECT key, parent, kind, dir, created_at FROM snapshots WHERE namespace = ?1 ORDER BY created_at",
        )?;
        let rows = stmt.query_map(params![ns], |r| {
            Ok(Info {
                key: r.get(0)?,
                parent: r.get(1)?,
                kind: Kind::parse(&r.get::<_, String>(2)?),
                dir: r.get(3)?,
                created_at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// (bytes, inodes) the snapshot's own tree uses.
    pub fn usage(&self, tx: &Transaction, ns: &str, key: &str) -> Result<(i64, i64)> {
        let info = self.get(tx, ns, key)?;
        let mut total = (0i64, 0i64);
        walk(&self.fs_of(&info.dir), &mut total);
        Ok(total)
    }

    /// Directory names on disk, for recovery.
    pub fn list_dirs(&self) -> Vec<String> {
        fs::read_dir(&self.root)
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn walk(dir: &Path, total: &mut (i64, i64)) {
    use std::os::unix::fs::MetadataExt;
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if let Ok(m) = e.path().symlink_metadata() {
                total.1 += 1;
                total.0 += (m.blocks() * 512) as i64;
                if m.is_dir() {
                    walk(&e.path(), total);
                }
            }
        }
    }
}

/// `cp -a` keeps owners, modes, links, device nodes and xattrs; the copy is synced
/// before it is recorded.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let out = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .output()
        .map_err(|e| io("running cp", e))?;
    if !out.status.success() {
        return Err(Error::Internal(format!(
            "copying the parent snapshot: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let copied = fs::File::open(to).map_err(|e| io("opening the copy", e))?;
    nix::unistd::syncfs(&copied).map_err(|e| crate::error::sys("syncing the copy", e))
}

fn overlay_works(root: &Path) -> bool {
    let probe = root.join(".overlay-probe");
    let _ = fs::remove_dir_all(&probe);
    let ok = (|| {
        for d in ["lower", "upper", "work", "merged"] {
            fs::create_dir_all(probe.join(d)).ok()?;
        }
        let m = Mount {
            type_: "overlay".into(),
            source: "overlay".into(),
            options: vec![
                format!("lowerdir={}", probe.join("lower").display()),
                format!("upperdir={}", probe.join("upper").display()),
                format!("workdir={}", probe.join("work").display()),
            ],
            ..Default::default()
        };
        skiff_mount::mount(&m, &probe.join("merged")).ok()?;
        let _ = skiff_mount::unmount_all(&probe.join("merged"));
        Some(())
    })()
    .is_some();
    let _ = fs::remove_dir_all(&probe);
    ok
}
