//! Opening the manager's stdio FIFOs and `file://` logs: without depending on when the
//! other side of a FIFO opens it, and without letting another local user swap what the
//! shim opens as root (see [`super::trusted_path`]). A FIFO must exist (the manager
//! makes it), be a FIFO and be owned by root or the shim's user; it is never created,
//! and never opened through a link. A `file://` log is created if missing, never
//! through a link, and must be a regular file.

use super::trusted_path::{self, Leaf, Parent};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

/// Opens an output FIFO for the shim to write to. A FIFO is opened read-write, which
/// never blocks and never fails for want of a reader: the manager may open its end
/// later, or go away and come back, without the copy seeing EPIPE.
pub fn open_output(path: &Path) -> io::Result<OwnedFd> {
    fifo(path)?.reopen(OFlag::O_RDWR | OFlag::O_NONBLOCK)
}

/// The two ends the shim holds of an input FIFO.
pub struct Input {
    /// Read without blocking: until a writer has ever opened the FIFO, Linux reports
    /// neither data nor hang-up on it, so a poll on it waits for the manager.
    pub reader: OwnedFd,
    /// The shim's own writer: while it is open, the manager's writers may come and go
    /// (containerd restarts, a client reattaches) without the reader seeing an end.
    pub keeper: OwnedFd,
}

/// Opens an input FIFO: its reader, then the shim's own writer (which cannot block:
/// the FIFO has a reader).
pub fn open_input(path: &Path) -> io::Result<Input> {
    let leaf = fifo(path)?;
    let reader = leaf.reopen(OFlag::O_RDONLY | OFlag::O_NONBLOCK)?;
    let keeper = leaf.reopen(OFlag::O_WRONLY | OFlag::O_NONBLOCK)?;
    Ok(Input { reader, keeper })
}

/// Opens (creating it if missing, mode 0640) a log file to append to.
pub fn open_log_file(path: &Path) -> io::Result<File> {
    let parent = trusted_path::parent(path)?;
    // A name made between the look and the create is looked at again.
    for _ in 0..8 {
        if let Some(leaf) = parent.leaf()? {
            return existing_log_file(&parent, &leaf);
        }
        match create(&parent) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
            other => return other,
        }
    }
    Err(io::Error::other(format!(
        "{}: made and removed again and again while being opened",
        path.display()
    )))
}

fn existing_log_file(parent: &Parent, leaf: &Leaf) -> io::Result<File> {
    if leaf.kind() != libc::S_IFREG {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is {}, not a regular file: a file:// log is appended to a file",
                parent.path.display(),
                kind_name(leaf.kind())
            ),
        ));
    }
    Ok(leaf.reopen(OFlag::O_WRONLY | OFlag::O_APPEND)?.into())
}

fn create(parent: &Parent) -> io::Result<File> {
    use std::os::unix::ffi::OsStrExt;
    let flags = OFlag::O_WRONLY
        | OFlag::O_APPEND
        | OFlag::O_CREAT
        | OFlag::O_EXCL
        | OFlag::O_NOFOLLOW
        | OFlag::O_CLOEXEC;
    let fd = nix::fcntl::openat(
        &parent.dir,
        parent.name.as_bytes(),
        flags,
        Mode::from_bits_truncate(0o640),
    )
    .map_err(io::Error::from)?;
    Ok(File::from(fd))
}

/// The FIFO at `path`, checked: it exists, is a FIFO, is not a link, and is root's or
/// the shim's user's.
fn fifo(path: &Path) -> io::Result<Leaf> {
    let parent = trusted_path::parent(path)?;
    let Some(leaf) = parent.leaf()? else {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "FIFO {} does not exist (the manager makes it before it names it)",
                path.display()
            ),
        ));
    };
    if leaf.kind() != libc::S_IFIFO {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is {}, not a FIFO (a log file is named with file://)",
                path.display(),
                kind_name(leaf.kind())
            ),
        ));
    }
    if !trusted_path::trusted_owner(leaf.stat.st_uid) {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "FIFO {} is owned by uid {}, not by root",
                path.display(),
                leaf.stat.st_uid
            ),
        ));
    }
    Ok(leaf)
}

fn kind_name(kind: libc::mode_t) -> &'static str {
    match kind {
        libc::S_IFLNK => "a symbolic link",
        libc::S_IFREG => "a regular file",
        libc::S_IFDIR => "a directory",
        libc::S_IFIFO => "a FIFO",
        libc::S_IFSOCK => "a socket",
        libc::S_IFCHR => "a character device",
        libc::S_IFBLK => "a block device",
        _ => "of an unknown kind",
    }
}
