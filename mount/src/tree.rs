//! The kernel's mount API for copies of mounts: `open_tree(OPEN_TREE_CLONE)` copies the
//! mount (or mount tree) at a path into a detached one, `mount_setattr` changes its
//! attributes (read-only, nosuid, ..., and an id mapping, which only a mount not yet
//! attached can be given), and `move_mount` attaches it at a path. A copy dropped
//! before it is attached goes away with its file descriptor.

use nix::mount::MsFlags;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A detached copy of a mount, or of a mount and everything mounted below it.
pub struct DetachedTree {
    fd: OwnedFd,
}

impl DetachedTree {
    /// Copies the mount at `source` (and, if `recursive`, the mounts below it).
    pub fn copy_of(source: &Path, recursive: bool) -> io::Result<DetachedTree> {
        let path = c_path(source)?;
        let mut flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC;
        if recursive {
            flags |= libc::AT_RECURSIVE as libc::c_uint;
        }
        // SAFETY: open_tree with a NUL-terminated path; a returned fd is ours.
        let fd =
            unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
        if fd < 0 {
            return Err(os_error(format!(
                "copying the mount at {}",
                source.display()
            )));
        }
        // SAFETY: a new file descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        Ok(DetachedTree { fd })
    }

    /// A detached mount made some other way (`fsmount`), to be attached like a copy.
    pub(crate) fn from_fd(fd: OwnedFd) -> DetachedTree {
        DetachedTree { fd }
    }

    /// Sets `attrs` on every mount of the copy, and its id mapping to the user namespace
    /// `userns` if one is given; its propagation becomes private.
    pub fn set(&self, attrs: Attributes, userns: Option<BorrowedFd>) -> io::Result<()> {
        let mut set = attrs.set;
        if userns.is_some() {
            set |= libc::MOUNT_ATTR_IDMAP;
        }
        let attr = libc::mount_attr {
            attr_set: set,
            attr_clr: attrs.clear,
            propagation: libc::MS_PRIVATE,
            userns_fd: userns.map_or(0, |fd| fd.as_raw_fd() as u64),
        };
        let empty = c"";
        // SAFETY: mount_setattr on our fd with an empty path, a valid mount_attr and its
        // size.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                self.fd.as_raw_fd(),
                empty.as_ptr(),
                libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
                &attr as *const libc::mount_attr,
                std::mem::size_of::<libc::mount_attr>(),
            )
        };
        if ret < 0 {
            let what = match userns {
                Some(_) => {
                    "giving a mount an id mapping (does its filesystem support idmapped mounts?)"
                }
                None => "setting the attributes of a mount",
            };
            return Err(os_error(what.into()));
        }
        Ok(())
    }

    /// Attaches the copy at `target`.
    pub fn attach(self, target: &Path) -> io::Result<()> {
        let to = c_path(target)?;
        let empty = c"";
        // SAFETY: move_mount from our fd (empty path) to a NUL-terminated path.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_move_mount,
                self.fd.as_raw_fd(),
                empty.as_ptr(),
                libc::AT_FDCWD,
                to.as_ptr(),
                libc::MOVE_MOUNT_F_EMPTY_PATH,
            )
        };
        if ret < 0 {
            return Err(os_error(format!(
                "attaching a mount at {}",
                target.display()
            )));
        }
        Ok(())
    }
}

/// Mount attributes to set and to clear (`MOUNT_ATTR_*`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Attributes {
    pub set: u64,
    pub clear: u64,
}

impl Attributes {
    pub const READ_ONLY: Attributes = Attributes {
        set: libc::MOUNT_ATTR_RDONLY,
        clear: 0,
    };

    /// The attributes mount(2) flags ask for: read-only, nosuid, nodev, noexec,
    /// nodiratime and the access time mode (relatime, the kernel's default, unless
    /// noatime or strictatime).
    pub fn from_flags(flags: MsFlags) -> Attributes {
        let mut set = 0;
        for (flag, attr) in [
            (MsFlags::MS_RDONLY, libc::MOUNT_ATTR_RDONLY),
            (MsFlags::MS_NOSUID, libc::MOUNT_ATTR_NOSUID),
            (MsFlags::MS_NODEV, libc::MOUNT_ATTR_NODEV),
            (MsFlags::MS_NOEXEC, libc::MOUNT_ATTR_NOEXEC),
            (MsFlags::MS_NODIRATIME, libc::MOUNT_ATTR_NODIRATIME),
        ] {
            if flags.contains(flag) {
                set |= attr;
            }
        }
        let mut clear = 0;
        let atime = if flags.contains(MsFlags::MS_NOATIME) {
            Some(libc::MOUNT_ATTR_NOATIME)
        } else if flags.contains(MsFlags::MS_STRICTATIME) {
            Some(libc::MOUNT_ATTR_STRICTATIME)
        } else if flags.contains(MsFlags::MS_RELATIME) {
            Some(libc::MOUNT_ATTR_RELATIME)
        } else {
            None
        };
        if let Some(mode) = atime {
            // The access time mode is a field: cleared whole, then set.
            clear |= libc::MOUNT_ATTR__ATIME;
            set |= mode;
        }
        Attributes { set, clear }
    }
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} holds a NUL byte", path.display()),
        )
    })
}

fn os_error(what: String) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_become_attributes() {
        let a = Attributes::from_flags(
            MsFlags::MS_BIND | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NOATIME,
        );
        assert_eq!(
            a.set,
            libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NOATIME
        );
        assert_eq!(a.clear, libc::MOUNT_ATTR__ATIME);
        assert_eq!(
            Attributes::from_flags(MsFlags::MS_BIND),
            Attributes::default()
        );
    }
}
