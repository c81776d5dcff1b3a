//! Overlay mounts whose options do not fit mount(2)'s one page: images of many layers,
//! whether a shim mounts a Create's rootfs or skiffd a snapshot. First the same options
//! with every directory relative to their common parent, mounted from a thread that has
//! a working directory of its own there (`unshare(CLONE_FS)`), as containerd does from a
//! helper; where even that is too long, the new mount API with one `lowerdir+` per layer
//! (Linux 6.8), which has no length limit at all.

use crate::tree::{Attributes, DetachedTree};
use nix::mount::MsFlags;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// mount(2) takes at most one page of options.
pub const MAX_DATA: usize = 4095;

// From linux/mount.h; the libc crate has the syscall numbers but not these.
const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;

/// `options` are overlay's (`lowerdir=A:B`, `upperdir=U`, `workdir=W`, flags for the
/// filesystem); `flags` the mount's own (`ro`, `nosuid`, `nodev`, `noexec`).
pub fn mount(options: &[&str], flags: MsFlags, target: &Path) -> io::Result<()> {
    if let Some((base, data)) = relative(options) {
        if data.len() <= MAX_DATA {
            return mount_in(&base, &data, flags, target);
        }
    }
    new_api(options, flags, target)
}

/// The options with their directories relative to the deepest directory they share.
fn relative(options: &[&str]) -> Option<(PathBuf, String)> {
    let dirs: Vec<&Path> = options
        .iter()
        .filter_map(|o| o.split_once('='))
        .filter(|(k, _)| matches!(*k, "lowerdir" | "upperdir" | "workdir"))
        .flat_map(|(_, v)| v.split(':'))
        .map(Path::new)
        .collect();
    let mut base = dirs.first()?.parent()?.to_path_buf();
    while !dirs.iter().all(|d| d.starts_with(&base)) {
        base = base.parent()?.to_path_buf();
    }
    let rel = |v: &str| -> String {
        v.split(':')
            .map(|d| {
                Path::new(d)
                    .strip_prefix(&base)
                    .unwrap_or(Path::new(d))
                    .display()
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join(":")
    };
    let data: Vec<String> = options
        .iter()
        .map(|o| match o.split_once('=') {
            Some((k @ ("lowerdir" | "upperdir" | "workdir"), v)) => format!("{k}={}", rel(v)),
            _ => o.to_string(),
        })
        .collect();
    Some((base, data.join(",")))
}

/// mount(2) from a thread whose working directory is `base` (its own: the process's
/// stays where it is).
fn mount_in(base: &Path, data: &str, flags: MsFlags, target: &Path) -> io::Result<()> {
    let (base, data, target) = (base.to_path_buf(), data.to_string(), target.to_path_buf());
    std::thread::spawn(move || -> io::Result<()> {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS)?;
        nix::unistd::chdir(&base)?;
        nix::mount::mount(
            Some("overlay"),
            &target,
            Some("overlay"),
            flags,
            Some(data.as_str()),
        )?;
        Ok(())
    })
    .join()
    .map_err(|_| io::Error::other("the mount thread panicked"))?
}

fn cstring(s: &[u8]) -> io::Result<CString> {
    CString::new(s)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in a mount option"))
}

fn check(rc: libc::c_long) -> io::Result<libc::c_long> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn fsconfig(
    fs: &OwnedFd,
    cmd: libc::c_uint,
    key: Option<&str>,
    value: Option<&str>,
) -> io::Result<()> {
    let key = key.map(|k| cstring(k.as_bytes())).transpose()?;
    let value = value.map(|v| cstring(v.as_bytes())).transpose()?;
    let ptr = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: fsconfig(2) on a filesystem context we own, with NUL-terminated strings
    // (or null where the command takes none) that outlive the call; nix has no wrapper.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            cmd,
            ptr(&key),
            ptr(&value),
            0,
        )
    };
    check(rc).map(drop)
}

/// fsopen, one fsconfig per option (`lowerdir+` per layer), fsmount, move_mount.
fn new_api(options: &[&str], flags: MsFlags, target: &Path) -> io::Result<()> {
    let name = cstring(b"overlay")?;
    // SAFETY: fsopen(2) with a NUL-terminated name; the new descriptor is owned below.
    let fd = check(unsafe { libc::syscall(libc::SYS_fsopen, name.as_ptr(), FSOPEN_CLOEXEC) })?;
    // SAFETY: fsopen returned a descriptor nothing else owns.
    let fs = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    for opt in options {
        match opt.split_once('=') {
            Some(("lowerdir", dirs)) => {
                for d in dirs.split(':') {
                    fsconfig(&fs, FSCONFIG_SET_STRING, Some("lowerdir+"), Some(d))?;
                }
            }
            Some((k, v)) => fsconfig(&fs, FSCONFIG_SET_STRING, Some(k), Some(v))?,
            None => fsconfig(&fs, FSCONFIG_SET_FLAG, Some(opt), None)?,
        }
    }
    fsconfig(&fs, FSCONFIG_CMD_CREATE, None, None)?;
    // The mount's own flags that fsmount(2) takes (it has no access time flags).
    let attrs = Attributes::from_flags(flags).set
        & (libc::MOUNT_ATTR_RDONLY
            | libc::MOUNT_ATTR_NOSUID
            | libc::MOUNT_ATTR_NODEV
            | libc::MOUNT_ATTR_NOEXEC);
    // SAFETY: fsmount(2) of the context just created; the new descriptor is owned below.
    let m =
        check(unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, attrs) })?;
    // SAFETY: fsmount returned a descriptor nothing else owns.
    let mnt = unsafe { OwnedFd::from_raw_fd(m as i32) };
    DetachedTree::from_fd(mnt).attach(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Layer directories with long names, more than fit a page even relative to their
    /// parent: the new mount API takes them; a file of the lowest layer shows.
    #[test]
    fn overlays_of_many_long_named_layers_mount() {
        let dir = std::env::temp_dir().join(format!("skiff-long-overlay-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut lowers = Vec::new();
        for i in 0..200 {
            let d = dir.join(format!("layer-with-a-rather-long-directory-name-{i:04}"));
            std::fs::create_dir_all(&d).unwrap();
            lowers.push(d.display().to_string());
        }
        std::fs::write(
            dir.join("layer-with-a-rather-long-directory-name-0199/bottom"),
            "b",
        )
        .unwrap();
        let (upper, work, merged) = (dir.join("upper"), dir.join("work"), dir.join("merged"));
        for d in [&upper, &work, &merged] {
            std::fs::create_dir_all(d).unwrap();
        }
        let lower = format!("lowerdir={}", lowers.join(":"));
        let (u, w) = (
            format!("upperdir={}", upper.display()),
            format!("workdir={}", work.display()),
        );
        let options = [u.as_str(), w.as_str(), lower.as_str()];
        assert!(
            relative(&options).unwrap().1.len() > MAX_DATA,
            "the test needs longer names"
        );
        mount(&options, MsFlags::empty(), &merged).unwrap();
        let seen = std::fs::read_to_string(merged.join("bottom"));
        let _ = nix::mount::umount2(&merged, nix::mount::MntFlags::MNT_DETACH);
        assert_eq!(seen.unwrap(), "b");
        // Fewer layers: relative paths fit, from the helper thread.
        let few = format!("lowerdir={}", lowers[..60].join(":"));
        let options = [u.as_str(), w.as_str(), few.as_str()];
        assert!(options.join(",").len() > MAX_DATA);
        assert!(relative(&options).unwrap().1.len() <= MAX_DATA);
        mount(&options, MsFlags::MS_RDONLY, &merged).unwrap();
        let listed = std::fs::read_dir(&merged).map(|d| d.count());
        let _ = nix::mount::umount2(&merged, nix::mount::MntFlags::MNT_DETACH);
        assert!(listed.is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
