//! Mounting what a snapshot's `mounts` describe (bind and overlay), as a shim does with
//! a Create request's rootfs, and unmounting.

use crate::error::{io, Error, Result};
use skiff_protos::mount::Mount;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cstr(s: &[u8]) -> Result<CString> {
    CString::new(s).map_err(|_| Error::InvalidArgument("a path holds a NUL byte".into()))
}

fn sys_mount(
    source: &[u8],
    target: &Path,
    fstype: &str,
    flags: libc::c_ulong,
    data: &str,
) -> std::io::Result<()> {
    let source = CString::new(source)?;
    let target = CString::new(target.as_os_str().as_bytes())?;
    let fstype = CString::new(fstype)?;
    let data = CString::new(data)?;
    // SAFETY: NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            flags,
            data.as_ptr() as *const libc::c_void,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Mounts `mounts` (one, as the snapshotters give) on `target`.
pub fn mount_all(mounts: &[Mount], target: &Path) -> Result<()> {
    for m in mounts {
        let ro = m.options.iter().any(|o| o == "ro");
        match m.type_.as_str() {
            "bind" => {
                let rec = if m.options.iter().any(|o| o == "rbind") {
                    libc::MS_REC
                } else {
                    0
                };
                sys_mount(m.source.as_bytes(), target, "", libc::MS_BIND | rec, "").map_err(
                    |e| {
                        io(
                            format!("bind-mounting {} on {}", m.source, target.display()),
                            e,
                        )
                    },
                )?;
                if ro {
                    sys_mount(
                        b"",
                        target,
                        "",
                        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                        "",
                    )
                    .map_err(|e| io(format!("making {} read-only", target.display()), e))?;
                }
            }
            "overlay" => {
                let data: Vec<&str> = m
                    .options
                    .iter()
                    .map(String::as_str)
                    .filter(|o| *o != "ro")
                    .collect();
                let flags = if ro { libc::MS_RDONLY } else { 0 };
                sys_mount(b"overlay", target, "overlay", flags, &data.join(","))
                    .map_err(|e| io(format!("mounting overlay on {}", target.display()), e))?;
            }
            other => {
                return Err(Error::InvalidArgument(format!(
                    "cannot mount type {other:?}"
                )))
            }
        }
    }
    Ok(())
}

/// Detaches whatever is mounted on `target` (all layers of it).
pub fn unmount(target: &Path) -> Result<()> {
    let t = cstr(target.as_os_str().as_bytes())?;
    loop {
        // SAFETY: a NUL-terminated path.
        if unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) } != 0 {
            let e = std::io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EINVAL) | Some(libc::ENOENT) => Ok(()),
                _ => Err(io(format!("unmounting {}", target.display()), e)),
            };
        }
    }
}

/// Mount points at or below `dir`, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out: Vec<std::path::PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .filter(|p| p.starts_with(dir))
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    out.dedup();
    out
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape(field: &str) -> std::path::PathBuf {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    {
        use std::os::unix::ffi::OsStringExt;
        std::path::PathBuf::from(std::ffi::OsString::from_vec(out))
    }
}
