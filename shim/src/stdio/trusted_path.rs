//! Resolving a stdio path the manager names (a FIFO, a `file://` log) so that no other
//! local user can swap what the shim, as root, opens there. The path is walked one
//! name at a time, never following a link blindly:
//!
//! - every directory on the way is owned by root (or the shim's own user) and is not
//!   writable by others, unless it is sticky (like /tmp: others may add names there, but
//!   what they add is theirs, and the next step refuses it);
//! - every symbolic link on the way is owned by root (or the shim's user), then followed
//!   (`/var/run` is a link to `/run` on most machines);
//! - the last name is opened `O_PATH | O_NOFOLLOW`, so that its type and owner can be
//!   checked before anything is opened for reading or writing; it is then reopened
//!   through `/proc/self/fd`, which names that very inode.

use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, OFlag};
use nix::sys::stat::{fstat, FileStat, Mode};
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Symbolic links followed at the most, as the kernel's own limit.
const MAX_LINKS: u32 = 40;

/// The directory that holds a path's last name, reached through trusted directories.
pub struct Parent {
    pub dir: OwnedFd,
    pub name: OsString,
    /// The path as given, for messages.
    pub path: PathBuf,
}

/// What the last name of a path is, opened `O_PATH | O_NOFOLLOW`.
pub struct Leaf {
    pub fd: OwnedFd,
    pub stat: FileStat,
}

/// Walks `path` to the directory holding its last name, checking every directory and
/// link on the way.
pub fn parent(path: &Path) -> io::Result<Parent> {
    let bad = |why: String| io::Error::new(io::ErrorKind::PermissionDenied, why);
    if !path.is_absolute() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not an absolute path", path.display()),
        ));
    }
    let name = match path.components().next_back() {
        Some(Component::Normal(name)) => name.to_os_string(),
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} does not end in a file name", path.display()),
            ))
        }
    };
    let mut todo: Vec<OsString> = names(path.parent().unwrap_or(Path::new("/")));
    todo.reverse();
    let mut dir = open_root()?;
    let mut at = PathBuf::from("/");
    check_dir(&dir, &at).map_err(bad)?;
    let mut links = 0;
    while let Some(next) = todo.pop() {
        let fd = open_path(&dir, &next)?;
        let stat = fstat(&fd)?;
        let shown = at.join(&next);
        match stat.st_mode & libc::S_IFMT {
            libc::S_IFDIR => {
                check_dir(&fd, &shown).map_err(bad)?;
                dir = fd;
                at = shown;
            }
            libc::S_IFLNK => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(Errno::ELOOP.into());
                }
                if !trusted_owner(stat.st_uid) {
                    return Err(bad(format!(
                        "{} is a symbolic link owned by uid {}",
                        shown.display(),
                        stat.st_uid
                    )));
                }
                let target = readlinkat(&fd, "")?;
                let target = Path::new(&target);
                let mut more = names(target);
                more.reverse();
                todo.extend(more);
                if target.is_absolute() {
                    dir = open_root()?;
                    at = PathBuf::from("/");
                }
            }
            _ => return Err(Errno::ENOTDIR.into()),
        }
    }
    Ok(Parent {
        dir,
        name,
        path: path.to_path_buf(),
    })
}

impl Parent {
    /// The last name, not followed if it is a link; None when there is none.
    pub fn leaf(&self) -> io::Result<Option<Leaf>> {
        match open_path(&self.dir, &self.name) {
            Ok(fd) => {
                let stat = fstat(&fd)?;
                Ok(Some(Leaf { fd, stat }))
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl Leaf {
    pub fn kind(&self) -> libc::mode_t {
        self.stat.st_mode & libc::S_IFMT
    }

    /// Opens the inode this leaf names, with `flags`.
    pub fn reopen(&self, flags: OFlag) -> io::Result<OwnedFd> {
        let proc_path = format!("/proc/self/fd/{}", self.fd.as_raw_fd());
        Ok(nix::fcntl::open(
            proc_path.as_str(),
            flags | OFlag::O_CLOEXEC | OFlag::O_NOCTTY,
            Mode::empty(),
        )?)
    }
}

/// Whether a file owned by `uid` may be trusted: root's, or the shim's own user's.
pub fn trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == nix::unistd::geteuid().as_raw()
}

/// A directory others can add names to or take them from is no place for a stream.
fn check_dir(dir: &OwnedFd, shown: &Path) -> Result<(), String> {
    let stat = fstat(dir).map_err(|e| format!("{}: {e}", shown.display()))?;
    if !trusted_owner(stat.st_uid) {
        return Err(format!(
            "directory {} is owned by uid {}",
            shown.display(),
            stat.st_uid
        ));
    }
    let writable_by_others = stat.st_mode & 0o022 != 0;
    let sticky = stat.st_mode & libc::S_ISVTX != 0;
    if writable_by_others && !sticky {
        return Err(format!(
            "directory {} is writable by users other than its owner (mode {:o})",
            shown.display(),
            stat.st_mode & 0o7777
        ));
    }
    Ok(())
}

fn names(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

fn open_root() -> io::Result<OwnedFd> {
    Ok(nix::fcntl::open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?)
}

/// `name` in `dir`, opened `O_PATH | O_NOFOLLOW`: a link is opened as itself.
fn open_path(dir: &OwnedFd, name: &OsStr) -> io::Result<OwnedFd> {
    Ok(openat(
        dir,
        name.as_bytes(),
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("skiff-tp-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        dir
    }

    #[test]
    fn a_path_through_private_directories_and_a_root_link_resolves() {
        let dir = scratch("ok");
        std::fs::create_dir(dir.join("real")).unwrap();
        std::os::unix::fs::symlink(dir.join("real"), dir.join("link")).unwrap();
        std::fs::write(dir.join("real/f"), b"").unwrap();
        let p = parent(&dir.join("link/f")).unwrap();
        assert_eq!(p.name, "f");
        let leaf = p.leaf().unwrap().expect("f exists");
        assert_eq!(leaf.kind(), libc::S_IFREG);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_directory_others_can_write_is_refused() {
        let dir = scratch("open");
        std::fs::create_dir(dir.join("shared")).unwrap();
        std::fs::set_permissions(dir.join("shared"), std::fs::Permissions::from_mode(0o777))
            .unwrap();
        let err = parent(&dir.join("shared/f")).err().expect("refused");
        assert!(err.to_string().contains("writable by users other"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_last_name_that_is_a_link_is_seen_as_a_link() {
        let dir = scratch("leaf");
        std::os::unix::fs::symlink("/etc/passwd", dir.join("f")).unwrap();
        let leaf = parent(&dir.join("f")).unwrap().leaf().unwrap().unwrap();
        assert_eq!(leaf.kind(), libc::S_IFLNK);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
