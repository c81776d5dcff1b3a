//! Applying an image layer (a tar stream) onto a mounted snapshot, by the OCI rules:
//! `.wh.NAME` deletes NAME from the layers below, `.wh..wh..opq` hides everything the
//! layers below put in its directory; files keep their modes, owners, xattrs and
//! times; hard links, symlinks, device nodes and FIFOs are made as they are.
//!
//! The unpack cannot leave its root by construction: each entry's parent directory is
//! resolved by the kernel inside the root ([`root`]), the entry is made by name in that
//! opened directory without following the name ([`create`]), its metadata is set on
//! the object made ([`meta`]), and whiteouts remove by name in their resolved parent
//! ([`remove`]). No step goes through a path that an earlier entry could have changed.

mod create;
mod meta;
mod path;
mod remove;
pub mod root;

use crate::error::{Error, Result};
use crate::limits::Budget;
use meta::Meta;
use path::Name;
use root::{sys_err, Root};
use std::collections::{HashSet, VecDeque};
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// Directories stay open until the layer is done, so their times are set on them
/// last (entries made in them change them); past this many, the oldest are set early.
const OPEN_DIRS: usize = 512;

/// Applies the layer read from `layer` onto `root`, counting its entries against
/// `budget`, and syncs the filesystem before returning. Returns the number of entries.
pub fn apply(root: &Path, layer: impl Read, budget: &Budget) -> Result<u64> {
    let mut unpack = Unpack {
        root: Root::open(root)?,
        made: HashSet::new(),
        dirs: VecDeque::new(),
    };
    let mut archive = tar::Archive::new(layer);
    let entries = archive
        .entries()
        .map_err(|e| Error::Corrupt(format!("reading a layer: {e}")))?;
    let mut count = 0;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::Corrupt(format!("reading a layer: {e}")))?;
        budget.entry()?;
        // A header that alone goes over is refused before its data streams.
        budget.unpacked_fits(entry.size())?;
        unpack.entry(&mut entry)?;
        count += 1;
    }
    unpack.finish()?;
    Ok(count)
}

struct Unpack {
    root: Root,
    /// What this layer made, as (device, inode of the directory, name): an opaque
    /// whiteout keeps these, whichever path reached the directory.
    made: HashSet<(u64, u64, OsString)>,
    dirs: VecDeque<(OwnedFd, i64, PathBuf)>,
}

impl Unpack {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<()> {
        let rel = path::clean(&entry.path_bytes())?;
        let Some(name) = rel.file_name().map(OsStr::to_os_string) else {
            return Ok(()); // the root itself
        };
        let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        match path::classify(&name, &rel)? {
            Name::Opaque => return self.opaque(&parent),
            Name::Whiteout(hidden) => return self.whiteout(&parent, hidden),
            Name::AufsMeta => return Ok(()),
            Name::Plain => {}
        }
        let dir = self.root.make_dirs(&parent)?;
        self.make(entry, &dir, &name, &rel)?;
        let key = dir_key(&dir, &rel)?;
        self.made.insert((key.0, key.1, name));
        Ok(())
    }

    fn make<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        dir: &OwnedFd,
        name: &OsStr,
        rel: &Path,
    ) -> Result<()> {
        use nix::sys::stat::SFlag;
        use tar::EntryType::*;
        let m = Meta::of(entry);
        let link = link_target(entry, rel);
        match entry.header().entry_type() {
            Directory => {
                let fd = create::directory(dir, name, &m, rel)?;
                self.defer_times(fd, m.mtime, rel)
            }
            Regular | Continuous => create::file(dir, name, entry, &m, rel),
            Symlink => create::symlink(dir, name, &link?, &m, rel),
            Link => create::hard_link(&self.root, &path::clean(&link?)?, dir, name, rel),
            kind @ (Char | Block | Fifo) => {
                let h = entry.header();
                let dev = (
                    h.device_major().ok().flatten().unwrap_or(0) as u64,
                    h.device_minor().ok().flatten().unwrap_or(0) as u64,
                );
                let sflag = match kind {
                    Char => SFlag::S_IFCHR,
                    Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                create::node(dir, name, sflag, dev, &m, rel)
            }
            XGlobalHeader => Ok(()),
            other => Err(Error::Corrupt(format!(
                "{}: unsupported tar entry type {other:?}",
                rel.display()
            ))),
        }
    }

    /// Removes `hidden` from `parent` (resolved in the root; nothing if it is not there).
    fn whiteout(&self, parent: &Path, hidden: &OsStr) -> Result<()> {
        match self.existing_dir(parent)? {
            Some(dir) => remove::remove(&dir, hidden),
            None => Ok(()),
        }
    }

    /// Empties `parent` of what the layers below put there, keeping what this one made.
    fn opaque(&self, parent: &Path) -> Result<()> {
        let Some(dir) = self.existing_dir(parent)? else {
            return Ok(());
        };
        let (dev, ino) = dir_key(&dir, parent)?;
        remove::clear(&dir, |n| self.made.contains(&(dev, ino, n.to_os_string())))
    }

    fn existing_dir(&self, rel: &Path) -> Result<Option<OwnedFd>> {
        use nix::errno::Errno;
        match self.root.dir(rel) {
            Ok(d) => Ok(Some(d)),
            Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => Ok(None),
            Err(e) => Err(sys_err("resolving", rel, e)),
        }
    }

    fn defer_times(&mut self, fd: OwnedFd, mtime: i64, rel: &Path) -> Result<()> {
        if self.dirs.len() >= OPEN_DIRS {
            if let Some((old, t, r)) = self.dirs.pop_front() {
                meta::set_times_on_fd(&old, t, &r)?;
            }
        }
        self.dirs.push_back((fd, mtime, rel.to_path_buf()));
        Ok(())
    }

    /// Directory times, then everything to disk: a snapshot commits only what is synced.
    fn finish(&mut self) -> Result<()> {
        for (fd, t, rel) in self.dirs.drain(..) {
            meta::set_times_on_fd(&fd, t, &rel)?;
        }
        let top = self.root.top()?;
        nix::unistd::syncfs(&top).map_err(|e| sys_err("syncing", Path::new("/"), e))
    }
}

fn link_target<R: Read>(entry: &tar::Entry<R>, rel: &Path) -> Result<Vec<u8>> {
    entry
        .link_name_bytes()
        .map(|l| l.into_owned())
        .ok_or_else(|| Error::Corrupt(format!("link {} has no target", rel.display())))
}

fn dir_key(dir: &OwnedFd, rel: &Path) -> Result<(u64, u64)> {
    let st = nix::sys::stat::fstat(dir).map_err(|e| sys_err("inspecting", rel, e))?;
    Ok((st.st_dev, st.st_ino))
}

#[cfg(test)]
mod tests;
