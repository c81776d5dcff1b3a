//! Removing what a layer replaces or hides: by name in an opened directory, never
//! following the last component, and into subdirectories only through descriptors
//! opened with `O_NOFOLLOW`, so a symlink is removed, not what it points to.

use crate::error::Result;
use crate::unpack::root::sys_err;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fstatat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};
use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Is `name` in `dir` a directory (not following a symlink)? None if it is not there.
pub fn is_dir(dir: &OwnedFd, name: &OsStr) -> Result<Option<bool>> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(
            SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR,
        )),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(sys_err("inspecting", Path::new(name), e)),
    }
}

/// Removes `name` from `dir`, a directory with everything in it; nothing if absent.
pub fn remove(dir: &OwnedFd, name: &OsStr) -> Result<()> {
    let rel = Path::new(name);
    match is_dir(dir, name)? {
        None => Ok(()),
        Some(false) => {
            unlinkat(dir, name, UnlinkatFlags::NoRemoveDir).map_err(|e| sys_err("removing", rel, e))
        }
        Some(true) => {
            let sub = open_subdir(dir, name)?;
            clear(&sub, |_| false)?;
            unlinkat(dir, name, UnlinkatFlags::RemoveDir).map_err(|e| sys_err("removing", rel, e))
        }
    }
}

/// Removes every entry of `dir` for which `keep` is false.
pub fn clear(dir: &OwnedFd, keep: impl Fn(&OsStr) -> bool) -> Result<()> {
    for name in names(dir)? {
        if !keep(&name) {
            remove(dir, &name)?;
        }
    }
    Ok(())
}

fn open_subdir(dir: &OwnedFd, name: &OsStr) -> Result<OwnedFd> {
    nix::fcntl::openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| sys_err("opening", Path::new(name), e))
}

/// The names in `dir` (read through a descriptor of its own, so `dir` keeps its offset).
fn names(dir: &OwnedFd) -> Result<Vec<OsString>> {
    let own = nix::fcntl::openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| sys_err("opening", Path::new("."), e))?;
    let mut listing =
        nix::dir::Dir::from_fd(own).map_err(|e| sys_err("listing", Path::new("."), e))?;
    let mut out = Vec::new();
    for entry in listing.iter() {
        let entry = entry.map_err(|e| sys_err("listing", Path::new("."), e))?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            out.push(OsStr::from_bytes(name).to_os_string());
        }
    }
    Ok(out)
}
