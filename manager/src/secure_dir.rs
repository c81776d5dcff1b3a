//! Directories only root can change, for paths that root-owned processes open later by
//! name (the stdio FIFOs a shim opens as root). A directory that another user made, or
//! can rename entries in, would let that user swap a FIFO for a symlink to any file
//! between its creation and its opening. So each component from `/` down is opened
//! without following symlinks and checked: owned by root (our effective uid), and not
//! writable by group or others unless sticky; the last one private (no group or other
//! bits at all).

use nix::fcntl::{open, openat, OFlag};
use nix::sys::stat::{fstat, mkdirat, Mode};
use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::path::{Component, Path};

const DIR: OFlag = OFlag::O_DIRECTORY
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC)
    .union(OFlag::O_RDONLY);

/// Opens `path` (absolute), checking every component; returns the last one's descriptor.
pub fn open_checked(path: &Path) -> Result<OwnedFd, String> {
    open_chain(path, true)
}

/// `private`: whether the last component must be 0700 too, or is checked as the others.
fn open_chain(path: &Path, private: bool) -> Result<OwnedFd, String> {
    if !path.is_absolute() {
        return Err(format!("{} is not an absolute path", path.display()));
    }
    let mut dir = open("/", DIR, Mode::empty()).map_err(|e| format!("opening /: {}", e.desc()))?;
    let names: Vec<&OsStr> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(format!("{} has '..' in it", path.display()));
    }
    check(&dir, Path::new("/"), private && names.is_empty())?;
    let mut so_far = std::path::PathBuf::from("/");
    for (i, name) in names.iter().enumerate() {
        so_far.push(name);
        let fd = openat(&dir, *name, DIR, Mode::empty()).map_err(|e| {
            let why = if e == nix::errno::Errno::ELOOP || e == nix::errno::Errno::ENOTDIR {
                "is a symlink or not a directory".to_string()
            } else {
                e.desc().to_string()
            };
            format!("{}: {why}", so_far.display())
        })?;
        dir = fd;
        check(&dir, &so_far, private && i + 1 == names.len())?;
    }
    Ok(dir)
}

fn check(fd: &OwnedFd, path: &Path, last: bool) -> Result<(), String> {
    let st = fstat(fd).map_err(|e| format!("{}: {}", path.display(), e.desc()))?;
    let me = nix::unistd::geteuid().as_raw();
    if st.st_uid != me && st.st_uid != 0 {
        return Err(format!(
            "{} is owned by uid {}, not root: another user could swap what is in it",
            path.display(),
            st.st_uid
        ));
    }
    let mode = st.st_mode & 0o7777;
    if last && mode & 0o077 != 0 {
        return Err(format!(
            "{} has mode {mode:04o}; it must be private to root (0700)",
            path.display()
        ));
    }
    if !last && mode & 0o022 != 0 && mode & 0o1000 == 0 {
        return Err(format!(
            "{} has mode {mode:04o}: others can rename what is in it",
            path.display()
        ));
    }
    Ok(())
}

/// Makes `parent/name` (0700) unless it exists, then opens and checks the whole path.
pub fn make_private(parent: &Path, name: &str) -> Result<OwnedFd, String> {
    let p = open_chain(parent, false)?;
    match mkdirat(&p, name, Mode::S_IRWXU) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
        Err(e) => {
            return Err(format!(
                "creating {}: {}",
                parent.join(name).display(),
                e.desc()
            ))
        }
    }
    open_checked(&parent.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path, m: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    }

    #[test]
    fn only_directories_root_alone_can_change_pass() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let base = std::env::temp_dir().join(format!("skiff-secure-{}", std::process::id()));
        std::fs::create_dir_all(&base).unwrap();
        mode(&base, 0o755);
        let ok = make_private(&base, "fifo").unwrap();
        drop(ok);
        // Another user's directory, a symlink, a loose mode, a loose parent.
        let theirs = base.join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::os::unix::fs::chown(&theirs, Some(1000), Some(1000)).unwrap();
        mode(&theirs, 0o700);
        let e = open_checked(&theirs).unwrap_err();
        assert!(e.contains("owned by uid 1000"), "{e}");
        std::os::unix::fs::symlink(base.join("fifo"), base.join("link")).unwrap();
        let e = open_checked(&base.join("link")).unwrap_err();
        assert!(e.contains("is a symlink"), "{e}");
        mode(&base.join("fifo"), 0o755);
        let e = open_checked(&base.join("fifo")).unwrap_err();
        assert!(e.contains("must be private"), "{e}");
        mode(&base.join("fifo"), 0o700);
        mode(&base, 0o777);
        let e = open_checked(&base.join("fifo")).unwrap_err();
        assert!(e.contains("others can rename"), "{e}");
        mode(&base, 0o1777);
        open_checked(&base.join("fifo")).unwrap();
        std::fs::remove_dir_all(&base).unwrap();
    }
}
