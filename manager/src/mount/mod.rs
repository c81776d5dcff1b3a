//! Mounting what a snapshot's `mounts` describe (bind and overlay), as a shim does with
//! a Create request's rootfs, and unmounting.

mod long_overlay;

use crate::error::{io, Error, Result};
use nix::mount::{MntFlags, MsFlags};
use skiff_protos::mount::Mount;
use std::path::Path;

/// mount(2) takes at most one page of options.
pub const MAX_DATA: usize = 4095;

fn sys_mount(
    source: &str,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: &str,
) -> std::io::Result<()> {
    let data = (!data.is_empty()).then_some(data);
    nix::mount::mount(Some(source), target, fstype, flags, data).map_err(std::io::Error::from)
}

/// Whether a shim can mount `mounts` with mount(2) as they are.
pub fn fits_mount_data(mounts: &[Mount]) -> bool {
    mounts.iter().all(|m| m.options.join(",").len() <= MAX_DATA)
}

/// Mounts `mounts` (one, as the snapshotters give) on `target`.
pub fn mount_all(mounts: &[Mount], target: &Path) -> Result<()> {
    for m in mounts {
        let ro = m.options.iter().any(|o| o == "ro");
        match m.type_.as_str() {
            "bind" => {
                let rec = if m.options.iter().any(|o| o == "rbind") {
                    MsFlags::MS_REC
                } else {
                    MsFlags::empty()
                };
                sys_mount(&m.source, target, None, MsFlags::MS_BIND | rec, "").map_err(|e| {
                    io(
                        format!("bind-mounting {} on {}", m.source, target.display()),
                        e,
                    )
                })?;
                if ro {
                    sys_mount(
                        "",
                        target,
                        None,
                        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
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
                let flags = if ro {
                    MsFlags::MS_RDONLY
                } else {
                    MsFlags::empty()
                };
                let joined = data.join(",");
                let done = if joined.len() <= MAX_DATA {
                    sys_mount("overlay", target, Some("overlay"), flags, &joined)
                } else {
                    long_overlay::mount(&data, ro, target)
                };
                done.map_err(|e| io(format!("mounting overlay on {}", target.display()), e))?;
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
    loop {
        match nix::mount::umount2(target, MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => return Ok(()),
            Err(e) => {
                return Err(io(
                    format!("unmounting {}", target.display()),
                    std::io::Error::from(e),
                ))
            }
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
