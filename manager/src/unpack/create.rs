//! Making each kind of entry by name in its opened parent directory, never following
//! that name: files with `O_CREAT | O_EXCL | O_NOFOLLOW`, directories opened with
//! `O_NOFOLLOW` after `mkdirat`, links and nodes with the `*at` calls. Whatever was
//! there before is removed first (a directory stays when a directory replaces it).

use crate::error::{Error, Result};
use crate::unpack::meta::{self, Meta};
use crate::unpack::remove;
use crate::unpack::root::{sys_err, Root};
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{mkdirat, mknodat, Mode, SFlag};
use nix::unistd::{linkat, symlinkat};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Blocks of zeros are skipped, not written: files full of zeros become sparse.
const BLOCK: usize = 64 * 1024;
static ZEROS: [u8; BLOCK] = [0; BLOCK];

pub fn file(dir: &OwnedFd, name: &OsStr, data: &mut impl Read, m: &Meta, rel: &Path) -> Result<()> {
    remove::remove(dir, name)?;
    let fd = nix::fcntl::openat(
        dir,
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(|e| sys_err("creating", rel, e))?;
    let mut f = File::from(fd);
    copy_sparse(data, &mut f, rel)?;
    let fd = OwnedFd::from(f);
    meta::set_on_fd(&fd, m, rel)?;
    meta::set_times_on_fd(&fd, m.mtime, rel)
}

fn copy_sparse(data: &mut impl Read, f: &mut File, rel: &Path) -> Result<()> {
    let mut buf = vec![0u8; BLOCK];
    let mut len = 0u64;
    let write_err = |e: std::io::Error| crate::error::io(format!("writing {}", rel.display()), e);
    loop {
        let n = fill(data, &mut buf)
            .map_err(|e| Error::Corrupt(format!("reading {} from a layer: {e}", rel.display())))?;
        if n == 0 {
            break;
        }
        if buf[..n] == ZEROS[..n] {
            f.seek(SeekFrom::Current(n as i64)).map_err(write_err)?;
        } else {
            f.write_all(&buf[..n]).map_err(write_err)?;
        }
        len += n as u64;
    }
    f.set_len(len).map_err(write_err)
}

/// Reads until `buf` is full or the data ends.
fn fill(data: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match data.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// The directory `name`, kept if it is one, made if not; returns it opened, its owner,
/// mode and xattrs set (its times are set once the layer is done with it).
pub fn directory(dir: &OwnedFd, name: &OsStr, m: &Meta, rel: &Path) -> Result<OwnedFd> {
    if remove::is_dir(dir, name)? != Some(true) {
        remove::remove(dir, name)?;
        mkdirat(dir, name, Mode::from_bits_truncate(0o700))
            .map_err(|e| sys_err("creating directory", rel, e))?;
    }
    let fd = nix::fcntl::openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| sys_err("opening", rel, e))?;
    meta::set_on_fd(&fd, m, rel)?;
    Ok(fd)
}

pub fn symlink(dir: &OwnedFd, name: &OsStr, target: &[u8], m: &Meta, rel: &Path) -> Result<()> {
    remove::remove(dir, name)?;
    symlinkat(OsStr::from_bytes(target), dir, name)
        .map_err(|e| sys_err("creating symlink", rel, e))?;
    meta::set_by_name(dir, name, m, true, rel)
}

/// A hard link to `target` (resolved inside the root; a symlink there is linked, not
/// followed). It shares its target's inode, so it takes no metadata of its own: the
/// target's was set when the target was made.
pub fn hard_link(
    root: &Root,
    target: &Path,
    dir: &OwnedFd,
    name: &OsStr,
    rel: &Path,
) -> Result<()> {
    let target_name = target
        .file_name()
        .ok_or_else(|| Error::Corrupt(format!("hard link {} has no target", rel.display())))?;
    let target_dir = root
        .dir(target.parent().unwrap_or(Path::new("")))
        .map_err(|e| sys_err("resolving", target, e))?;
    remove::remove(dir, name)?;
    linkat(&target_dir, target_name, dir, name, AtFlags::empty())
        .map_err(|e| sys_err("linking", rel, e))
}

/// A device node or FIFO.
pub fn node(
    dir: &OwnedFd,
    name: &OsStr,
    kind: SFlag,
    dev: (u64, u64),
    m: &Meta,
    rel: &Path,
) -> Result<()> {
    remove::remove(dir, name)?;
    let dev = nix::sys::stat::makedev(dev.0, dev.1);
    mknodat(dir, name, kind, Mode::from_bits_truncate(0o600), dev)
        .map_err(|e| sys_err("creating node", rel, e))?;
    meta::set_by_name(dir, name, m, false, rel)
}
