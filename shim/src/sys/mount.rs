//! Mounting the container's rootfs from the mounts in a Create request, and undoing it.

use skiff_protos::mount::Mount;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The mount(2) flags and data string of fstab-style options.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MountOptions {
    pub flags: libc::c_ulong,
    pub propagation: libc::c_ulong,
    pub data: Vec<String>,
}

pub fn parse_options(options: &[String]) -> MountOptions {
    let mut out = MountOptions::default();
    for opt in options {
        // (flag, whether the option clears it)
        let flag: Option<(libc::c_ulong, bool)> = match opt.as_str() {
            "ro" => Some((libc::MS_RDONLY, false)),
            "rw" => Some((libc::MS_RDONLY, true)),
            "nosuid" => Some((libc::MS_NOSUID, false)),
            "suid" => Some((libc::MS_NOSUID, true)),
            "nodev" => Some((libc::MS_NODEV, false)),
            "dev" => Some((libc::MS_NODEV, true)),
            "noexec" => Some((libc::MS_NOEXEC, false)),
            "exec" => Some((libc::MS_NOEXEC, true)),
            "sync" => Some((libc::MS_SYNCHRONOUS, false)),
            "async" => Some((libc::MS_SYNCHRONOUS, true)),
            "dirsync" => Some((libc::MS_DIRSYNC, false)),
            "remount" => Some((libc::MS_REMOUNT, false)),
            "mand" => Some((libc::MS_MANDLOCK, false)),
            "nomand" => Some((libc::MS_MANDLOCK, true)),
            "noatime" => Some((libc::MS_NOATIME, false)),
            "atime" => Some((libc::MS_NOATIME, true)),
            "nodiratime" => Some((libc::MS_NODIRATIME, false)),
            "diratime" => Some((libc::MS_NODIRATIME, true)),
            "bind" => Some((libc::MS_BIND, false)),
            "rbind" => Some((libc::MS_BIND | libc::MS_REC, false)),
            "relatime" => Some((libc::MS_RELATIME, false)),
            "norelatime" => Some((libc::MS_RELATIME, true)),
            "strictatime" => Some((libc::MS_STRICTATIME, false)),
            "nostrictatime" => Some((libc::MS_STRICTATIME, true)),
            "defaults" => None,
            _ => {
                let propagation = match opt.as_str() {
                    "private" => libc::MS_PRIVATE,
                    "rprivate" => libc::MS_PRIVATE | libc::MS_REC,
                    "shared" => libc::MS_SHARED,
                    "rshared" => libc::MS_SHARED | libc::MS_REC,
                    "slave" => libc::MS_SLAVE,
                    "rslave" => libc::MS_SLAVE | libc::MS_REC,
                    "unbindable" => libc::MS_UNBINDABLE,
                    "runbindable" => libc::MS_UNBINDABLE | libc::MS_REC,
                    _ => {
                        out.data.push(opt.clone());
                        continue;
                    }
                };
                out.propagation |= propagation;
                continue;
            }
        };
        if let Some((flag, clear)) = flag {
            if clear {
                out.flags &= !flag;
            } else {
                out.flags |= flag;
            }
        }
    }
    out
}

fn cstring(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

fn sys_mount(
    source: &str,
    target: &Path,
    fstype: &str,
    flags: libc::c_ulong,
    data: &str,
) -> io::Result<()> {
    let source = CString::new(source)?;
    let fstype = CString::new(fstype)?;
    let data = CString::new(data)?;
    let target = cstring(target)?;
    // SAFETY: all pointers are valid NUL-terminated strings for the call's duration.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            flags,
            data.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Mounts one containerd Mount on `target`.
pub fn mount(m: &Mount, target: &Path) -> io::Result<()> {
    let opts = parse_options(&m.options);
    let data = opts.data.join(",");
    let bind = opts.flags & libc::MS_BIND != 0;
    let fstype = if bind { "" } else { m.type_.as_str() };
    let first_flags = if bind {
        opts.flags & !libc::MS_RDONLY
    } else {
        opts.flags
    };
    sys_mount(&m.source, target, fstype, first_flags, &data).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "mount {} {:?} on {}: {e}",
                m.type_,
                m.source,
                target.display()
            ),
        )
    })?;
    // A bind mount ignores most flags until it is remounted with them.
    if bind && opts.flags & libc::MS_RDONLY != 0 {
        let flags = opts.flags | libc::MS_REMOUNT;
        if let Err(e) = sys_mount("", target, "", flags, "") {
            let _ = unmount_all(target);
            return Err(io::Error::new(
                e.kind(),
                format!("remount {} read-only: {e}", target.display()),
            ));
        }
    }
    if opts.propagation != 0 {
        if let Err(e) = sys_mount("", target, "", opts.propagation, "") {
            let _ = unmount_all(target);
            return Err(e);
        }
    }
    Ok(())
}

/// Mounts every mount on `target` in order; on failure, undoes what it mounted.
pub fn mount_all(mounts: &[Mount], target: &Path) -> io::Result<()> {
    for (i, m) in mounts.iter().enumerate() {
        if let Err(e) = mount(m, target) {
            if i > 0 {
                let _ = unmount_all(target);
            }
            return Err(e);
        }
    }
    Ok(())
}

/// Unmounts everything stacked on `target` (a rootfs can be mounted more than once).
pub fn unmount_all(target: &Path) -> io::Result<()> {
    let c = cstring(target)?;
    loop {
        // SAFETY: c is a valid path string.
        let rc = unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH | libc::UMOUNT_NOFOLLOW) };
        if rc != 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                // Not (or no longer) a mount point, or already gone: done.
                Some(libc::EINVAL) | Some(libc::ENOENT) => Ok(()),
                _ => Err(io::Error::new(
                    e.kind(),
                    format!("unmount {}: {e}", target.display()),
                )),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn overlay_options_become_data() {
        let o = parse_options(&strs(&[
            "index=off",
            "workdir=/w",
            "upperdir=/u",
            "lowerdir=/l1:/l2",
        ]));
        assert_eq!(o.flags, 0);
        assert_eq!(
            o.data.join(","),
            "index=off,workdir=/w,upperdir=/u,lowerdir=/l1:/l2"
        );
    }

    #[test]
    fn flags_set_and_clear() {
        let o = parse_options(&strs(&["rbind", "ro", "nosuid", "rprivate"]));
        assert_eq!(
            o.flags,
            libc::MS_BIND | libc::MS_REC | libc::MS_RDONLY | libc::MS_NOSUID
        );
        assert_eq!(o.propagation, libc::MS_PRIVATE | libc::MS_REC);
        let o = parse_options(&strs(&["ro", "rw"]));
        assert_eq!(o.flags, 0);
    }
}
