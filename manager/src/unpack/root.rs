//! A directory tree that unpacking cannot leave. Every path is resolved by the kernel,
//! `openat2(2)` with `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS` relative to a descriptor
//! of the root: `..` stops at the root and symlinks, absolute or not, resolve as if the
//! root were `/`, whatever the layers put in the tree. Where the kernel has no openat2
//! (before Linux 5.6) nothing is unpacked: there is no fallback to checking paths.

use crate::error::{Error, Result};
use nix::errno::Errno;
use nix::fcntl::readlinkat;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fchmod, mkdirat, Mode};
use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

/// Directories made for entries whose parents the layer does not list.
const IMPLIED_DIR_MODE: u32 = 0o755;

pub struct Root {
    fd: OwnedFd,
}

fn in_root(flags: OFlag) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

/// What a failed system call on `rel` means, with its name in the message.
pub fn sys_err(what: &str, rel: &Path, e: Errno) -> Error {
    crate::error::sys(format!("{what} {}", rel.display()), e)
}

impl Root {
    /// Opens `path` as the root; refuses where the kernel lacks openat2.
    pub fn open(path: &Path) -> Result<Root> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| sys_err("opening the unpack root", path, e))?;
        match openat2(&fd, ".", in_root(OFlag::O_PATH)) {
            Ok(_) => Ok(Root { fd }),
            Err(Errno::ENOSYS) => Err(Error::FailedPrecondition(
                "this kernel has no openat2(2) (Linux 5.6 or later): skiffd unpacks layers \
                 only where the kernel keeps every path inside the snapshot"
                    .into(),
            )),
            Err(e) => Err(sys_err("resolving in", path, e)),
        }
    }

    /// The root itself, readable (for syncing and listing).
    pub fn top(&self) -> Result<OwnedFd> {
        self.dir(Path::new(""))
            .map_err(|e| sys_err("opening", Path::new("/"), e))
    }

    /// Directory `rel` (relative, without `..`), resolved inside the root.
    pub fn dir(&self, rel: &Path) -> nix::Result<OwnedFd> {
        let path = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        openat2(
            &self.fd,
            path,
            in_root(OFlag::O_RDONLY | OFlag::O_DIRECTORY),
        )
    }

    /// Directory `rel`, made with its missing parents (mode 0755, whatever the umask).
    /// Each missing component is made in its resolved parent, then resolved again from
    /// the root, so a component that is a symlink is followed inside the root.
    pub fn make_dirs(&self, rel: &Path) -> Result<OwnedFd> {
        self.make_dirs_hops(rel, 0)
    }

    fn make_dirs_hops(&self, rel: &Path, hops: u32) -> Result<OwnedFd> {
        match self.dir(rel) {
            Err(Errno::ENOENT) => {}
            other => return other.map_err(|e| sys_err("resolving", rel, e)),
        }
        let mut fd = self.top()?;
        let mut prefix = PathBuf::new();
        for name in rel.iter() {
            prefix.push(name);
            fd = match self.dir(&prefix) {
                Ok(d) => d,
                Err(Errno::ENOENT) => self.make_dir_in(&fd, name, &prefix, hops)?,
                Err(e) => return Err(sys_err("resolving", &prefix, e)),
            };
        }
        Ok(fd)
    }

    fn make_dir_in(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
        rel: &Path,
        hops: u32,
    ) -> Result<OwnedFd> {
        let mode = Mode::from_bits_truncate(IMPLIED_DIR_MODE);
        match mkdirat(parent, name, mode) {
            Ok(()) => {
                let fd = self.dir(rel).map_err(|e| sys_err("resolving", rel, e))?;
                fchmod(&fd, mode).map_err(|e| sys_err("chmod", rel, e))?;
                Ok(fd)
            }
            // A symlink to nothing yet: make what it names (inside the root), as a
            // layer's later entries under it expect.
            Err(Errno::EEXIST) => {
                let target = readlinkat(parent, name).map_err(|e| sys_err("reading", rel, e))?;
                if hops >= MAX_HOPS {
                    return Err(Error::Corrupt(format!(
                        "too many symlinks under {}",
                        rel.display()
                    )));
                }
                let from = rel.parent().unwrap_or(Path::new(""));
                self.make_dirs_hops(&lexical(from, Path::new(&target)), hops + 1)?;
                self.dir(rel).map_err(|e| sys_err("resolving", rel, e))
            }
            Err(e) => Err(sys_err("creating directory", rel, e)),
        }
    }
}

/// Symlinks followed while making a directory a symlink names, as the kernel's 40.
const MAX_HOPS: u32 = 40;

/// Where symlink `target`, found in directory `from`, points, relative to the root (as
/// if it were `/`); only to know what to make, since every open resolves in the kernel.
fn lexical(from: &Path, target: &Path) -> PathBuf {
    let mut out = if target.is_absolute() {
        PathBuf::new()
    } else {
        from.to_path_buf()
    };
    for c in target.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}
