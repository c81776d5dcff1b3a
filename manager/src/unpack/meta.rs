//! Owners, modes, times and xattrs, set on the object itself: through the descriptor of
//! what was just created (files, directories), or by name in its opened parent with
//! `AT_SYMLINK_NOFOLLOW` (symlinks, device nodes, FIFOs); never through a path that a
//! later entry could have turned into a symlink.

use crate::error::{Error, Result};
use crate::unpack::root::sys_err;
use nix::fcntl::AtFlags;
use nix::sys::stat::{fchmod, fchmodat, futimens, utimensat, FchmodatFlags, Mode, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, Gid, Uid};
use std::ffi::{CString, OsStr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

/// What a tar header says about an entry's metadata.
pub struct Meta {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub mtime: i64,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Meta {
    pub fn of<R: std::io::Read>(entry: &mut tar::Entry<R>) -> Meta {
        let h = entry.header();
        let mut m = Meta {
            uid: h.uid().unwrap_or(0) as u32,
            gid: h.gid().unwrap_or(0) as u32,
            mode: h.mode().unwrap_or(0o644) & 0o7777,
            mtime: h.mtime().unwrap_or(0) as i64,
            xattrs: Vec::new(),
        };
        if let Ok(Some(exts)) = entry.pax_extensions() {
            for ext in exts.flatten() {
                if let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                    m.xattrs.push((name.to_vec(), ext.value_bytes().to_vec()));
                }
            }
        }
        m
    }

    fn mode(&self) -> Mode {
        Mode::from_bits_truncate(self.mode)
    }

    fn owner(&self) -> (Option<Uid>, Option<Gid>) {
        (Some(Uid::from_raw(self.uid)), Some(Gid::from_raw(self.gid)))
    }
}

/// Owner, then mode (a chown clears set-id bits), then xattrs, on an opened file or
/// directory. Times are separate: a directory's change as entries go into it.
pub fn set_on_fd(fd: &OwnedFd, m: &Meta, rel: &Path) -> Result<()> {
    let (uid, gid) = m.owner();
    fchown(fd, uid, gid).map_err(|e| sys_err("chown", rel, e))?;
    fchmod(fd, m.mode()).map_err(|e| sys_err("chmod", rel, e))?;
    for (name, value) in &m.xattrs {
        set_xattr(fd, name, value, rel)?;
    }
    Ok(())
}

pub fn set_times_on_fd(fd: &OwnedFd, mtime: i64, rel: &Path) -> Result<()> {
    let t = TimeSpec::new(mtime, 0);
    futimens(fd, &t, &t).map_err(|e| sys_err("setting the times of", rel, e))
}

/// Owner, mode (not for symlinks, which have none) and times of `name` in `dir`,
/// without following it. Xattrs need an open descriptor, which symlinks and device
/// nodes do not give without side effects: theirs are not applied.
pub fn set_by_name(dir: &OwnedFd, name: &OsStr, m: &Meta, symlink: bool, rel: &Path) -> Result<()> {
    let (uid, gid) = m.owner();
    fchownat(dir, name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(|e| sys_err("chown", rel, e))?;
    if !symlink {
        fchmodat(dir, name, m.mode(), FchmodatFlags::NoFollowSymlink)
            .map_err(|e| sys_err("chmod", rel, e))?;
    }
    let t = TimeSpec::new(m.mtime, 0);
    utimensat(dir, name, &t, &t, UtimensatFlags::NoFollowSymlink)
        .map_err(|e| sys_err("setting the times of", rel, e))
}

fn set_xattr(fd: &OwnedFd, name: &[u8], value: &[u8], rel: &Path) -> Result<()> {
    let n = CString::new(name).map_err(|_| {
        Error::Corrupt(format!("{}: an xattr name holds a NUL byte", rel.display()))
    })?;
    // SAFETY: fsetxattr on a descriptor we own, a NUL-terminated name, and a value
    // pointer and length from one slice; nix has no wrapper for the xattr calls.
    let rc = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        // Filesystems without user xattrs (or trusted.* without privilege) refuse; the
        // file itself is still right.
        if !matches!(e.raw_os_error(), Some(libc::ENOTSUP) | Some(libc::EPERM)) {
            return Err(crate::error::io(
                format!("setting xattr on {}", rel.display()),
                e,
            ));
        }
    }
    Ok(())
}
