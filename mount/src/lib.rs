//! Mounting what containerd's `Mount` messages describe, as a shim mounts a Create's
//! rootfs and skiffd mounts a snapshot: the options parsed once ([`options`]), then one
//! mount(2) (a bind is remounted for its flags; an overlay of more layers than one page
//! of options names as containerd mounts it, `long_overlay`), or, for a mount with an id
//! mapping, the kernel's mount API ([`idmapped`]); and unmounting everything stacked on a
//! target.

pub mod idmap;
pub mod idmapped;
mod long_overlay;
pub mod options;
mod plain;
mod tree;
mod userns;

pub use idmap::{IdMapping, IdRange};
pub use options::MountOptions;

use nix::mount::MntFlags;
use plain::{context, plain_mount, sys_mount};
use skiff_protos::mount::Mount;
use std::io;
use std::path::{Path, PathBuf};

pub use long_overlay::MAX_DATA;

/// Whether every mount's options fit one mount(2) call: what a shim that mounts them as
/// they are (one without long overlays) can take.
pub fn fits_mount_data(mounts: &[Mount]) -> bool {
    mounts.iter().all(|m| m.options.join(",").len() <= MAX_DATA)
}

/// Mounts one `Mount` on `target`.
pub fn mount(m: &Mount, target: &Path) -> io::Result<()> {
    let opts = MountOptions::parse(&m.options);
    match opts.id_mapping() {
        Some(Ok(mapping)) => idmapped::mount(m, &opts, &mapping, target).map_err(|e| {
            context(
                e,
                format!(
                    "id-mapped mount {} {:?} on {}",
                    m.type_,
                    m.source,
                    target.display()
                ),
            )
        })?,
        Some(Err(e)) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("mount {} {:?}: {e}", m.type_, m.source),
            ))
        }
        None => plain_mount(m, &opts, target)?,
    }
    if !opts.propagation.is_empty() {
        sys_mount(None, target, None, opts.propagation, "").map_err(|e| {
            let _ = unmount_all(target);
            context(e, format!("set the propagation of {}", target.display()))
        })?;
    }
    Ok(())
}

/// What can be told wrong in `mounts` without mounting: an id mapping that is malformed
/// or half given.
pub fn check_all(mounts: &[Mount]) -> Result<(), String> {
    for m in mounts {
        if let Some(Err(e)) = MountOptions::parse(&m.options).id_mapping() {
            return Err(format!("mount {} {:?}: {e}", m.type_, m.source));
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

/// Unmounts everything stacked on `target` (a rootfs can be mounted more than once),
/// without following a symlink there.
pub fn unmount_all(target: &Path) -> io::Result<()> {
    loop {
        match nix::mount::umount2(target, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW) {
            Ok(()) => continue,
            // Not (or no longer) a mount point, or already gone: done.
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(context(e.into(), format!("unmount {}", target.display()))),
        }
    }
}

/// Mount points at or below `dir`, deepest first (the order to unmount them in).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out: Vec<PathBuf> = text
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
fn unescape(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_bad_mapping_is_told_before_mounting() {
        let m = |options: &[&str]| skiff_protos::mount::Mount {
            type_: "overlay".into(),
            source: "overlay".into(),
            options: options.iter().map(|o| o.to_string()).collect(),
            ..Default::default()
        };
        assert!(super::check_all(&[m(&["lowerdir=/a"])]).is_ok());
        assert!(super::check_all(&[m(&["uidmap=0:1:1", "gidmap=0:1:1"])]).is_ok());
        let err = super::check_all(&[m(&["uidmap=0:1:1"])]).unwrap_err();
        assert!(err.contains("without gidmap"), "{err}");
        assert!(err.starts_with("mount overlay \"overlay\""), "{err}");
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(
            super::unescape(r"/a\040b/c\134d"),
            std::path::PathBuf::from("/a b/c\\d")
        );
        assert_eq!(
            super::unescape(r"/plain\04"),
            std::path::PathBuf::from(r"/plain\04")
        );
    }
}
