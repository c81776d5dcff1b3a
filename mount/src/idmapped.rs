//! Mounts whose options carry `uidmap=` and `gidmap=`: containerd 2.x's snapshotters
//! add them to a user-namespaced pod's rootfs, so that files of the image owned by 0
//! are owned by the pod's root inside, whatever host uid that is. The mapping becomes
//! a user namespace ([`crate::userns`]) given to the mount with `MOUNT_ATTR_IDMAP`:
//!
//! - an overlay gets id-mapped lower layers: each is copied read-only and id-mapped
//!   into a scratch directory, the overlay is mounted on those copies, and the copies
//!   are detached again (the overlay holds its own references to its layers). The
//!   upper layer is not mapped: what the container writes is owned by the host ids its
//!   processes have, as the snapshotter prepared it.
//! - a bind mount is a copy of its source, given its flags and the mapping before it is
//!   attached.
//! - any other filesystem is mounted, then replaced by an id-mapped copy of itself.

use crate::idmap::IdMapping;
use crate::options::MountOptions;
use crate::tree::{Attributes, DetachedTree};
use crate::userns::user_namespace;
use nix::mount::{MntFlags, MsFlags};
use skiff_protos::mount::Mount;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

/// Where the id-mapped copies of an overlay's lower layers are attached while it is
/// mounted: a directory per mount, private to root, removed again. Short, because
/// the overlay's `lowerdir=` names every layer by its path there and mount(2) takes at
/// most a page of options.
pub const SCRATCH_ROOT: &str = "/run/skiff/idmap";

/// Mounts `m` on `target` with `mapping`; `opts` are its parsed options.
pub fn mount(m: &Mount, opts: &MountOptions, mapping: &IdMapping, target: &Path) -> io::Result<()> {
    let userns = user_namespace(mapping)?;
    let userns = userns.as_fd();
    if opts.flags.contains(MsFlags::MS_BIND) {
        let tree =
            DetachedTree::copy_of(Path::new(&m.source), opts.flags.contains(MsFlags::MS_REC))?;
        tree.set(Attributes::from_flags(opts.flags), Some(userns))?;
        return tree.attach(target);
    }
    if m.type_ == "overlay" {
        return overlay(m, opts, userns, target);
    }
    crate::plain::plain_mount(m, opts, target)?;
    let mapped = DetachedTree::copy_of(target, true).and_then(|tree| {
        tree.set(Attributes::default(), Some(userns))?;
        Ok(tree)
    });
    let mapped = match mapped {
        Ok(tree) => tree,
        Err(e) => {
            let _ = nix::mount::umount2(target, MntFlags::MNT_DETACH);
            return Err(e);
        }
    };
    nix::mount::umount2(target, MntFlags::MNT_DETACH)?;
    mapped.attach(target)
}

/// An overlay on id-mapped copies of its lower layers.
fn overlay(m: &Mount, opts: &MountOptions, userns: BorrowedFd, target: &Path) -> io::Result<()> {
    let (index, lowers) = opts
        .data
        .iter()
        .enumerate()
        .find_map(|(i, o)| o.strip_prefix("lowerdir=").map(|l| (i, l)))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "an id-mapped overlay has no lowerdir= option",
            )
        })?;
    let mut scratch = Scratch::new()?;
    let mut mapped = Vec::new();
    for layer in split_lowerdirs(lowers) {
        if layer.is_empty() {
            // "::" ends the layers that are seen and begins the data-only ones.
            mapped.push(String::new());
            continue;
        }
        let tree =
            DetachedTree::copy_of(Path::new(&layer), false).map_err(|e| annotate(e, &layer))?;
        tree.set(Attributes::READ_ONLY, Some(userns))
            .map_err(|e| annotate(e, &layer))?;
        mapped.push(scratch.attach(tree)?.to_string_lossy().into_owned());
    }
    let mut data = opts.data.clone();
    data[index] = format!("lowerdir={}", mapped.join(":"));
    let data = MountOptions {
        data,
        flags: opts.flags,
        ..MountOptions::default()
    };
    crate::plain::plain_mount(m, &data, target)
    // The scratch copies are detached as `scratch` drops.
}

fn annotate(e: io::Error, layer: &str) -> io::Error {
    io::Error::new(e.kind(), format!("lower layer {layer}: {e}"))
}

/// A `lowerdir=` value's layers: separated by colons, a colon in a path escaped with a
/// backslash (as overlayfs reads them); an empty entry is the "::" before data-only
/// layers.
fn split_lowerdirs(value: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    out.last_mut().unwrap().push(next);
                }
            }
            ':' => out.push(String::new()),
            c => out.last_mut().unwrap().push(c),
        }
    }
    out
}

/// A private directory under [`SCRATCH_ROOT`] whose numbered subdirectories hold
/// attached copies; dropping it detaches them and removes the directories.
struct Scratch {
    dir: PathBuf,
    points: Vec<PathBuf>,
    attached: Vec<PathBuf>,
}

impl Scratch {
    fn new() -> io::Result<Scratch> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(SCRATCH_ROOT)
            .map_err(|e| io::Error::new(e.kind(), format!("creating {SCRATCH_ROOT}: {e}")))?;
        std::fs::set_permissions(SCRATCH_ROOT, std::fs::Permissions::from_mode(0o700))?;
        let dir = nix::unistd::mkdtemp(&Path::new(SCRATCH_ROOT).join("XXXXXX"))
            .map_err(|e| io::Error::other(format!("a directory in {SCRATCH_ROOT}: {e}")))?;
        Ok(Scratch {
            dir,
            points: Vec::new(),
            attached: Vec::new(),
        })
    }

    /// Attaches `tree` at a new directory; returns its path.
    fn attach(&mut self, tree: DetachedTree) -> io::Result<PathBuf> {
        let point = self.dir.join(self.points.len().to_string());
        std::fs::create_dir(&point)?;
        self.points.push(point.clone());
        tree.attach(&point)?;
        self.attached.push(point.clone());
        Ok(point)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for point in &self.attached {
            let _ = nix::mount::umount2(point, MntFlags::MNT_DETACH);
        }
        for point in &self.points {
            let _ = std::fs::remove_dir(point);
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowerdirs_split_as_overlayfs_reads_them() {
        assert_eq!(split_lowerdirs("/a:/b"), vec!["/a", "/b"]);
        assert_eq!(split_lowerdirs(r"/a\:x:/b"), vec!["/a:x", "/b"]);
        assert_eq!(split_lowerdirs("/a::/d"), vec!["/a", "", "/d"]);
        assert_eq!(split_lowerdirs("/a"), vec!["/a"]);
    }
}
