//! Mounting what a snapshot's `mounts` describe (bind and overlay), as a shim does with
//! a Create request's rootfs, and unmounting.

mod long_overlay;

use crate::error::{io, Error, Result};
use skiff_protos::mount::Mount;
use std::path::Path;

/// mount(2) takes at most one page of options.
pub const MAX_DATA: usize = 4095;

/// Whether a shim can mount `mounts` with mount(2) as they are.
pub fn fits_mount_data(mounts: &[Mount]) -> bool {
    mounts.iter().all(|m| m.options.join(",").len() <= MAX_DATA)
}

/// Mounts `mounts` (one, as the snapshotters give) on `target`: as a shim would, but
/// for an overlay whose options do not fit in one page.
pub fn mount_all(mounts: &[Mount], target: &Path) -> Result<()> {
    for m in mounts {
        let joined = m.options.join(",");
        let done = match m.type_.as_str() {
            "overlay" if joined.len() > MAX_DATA => {
                let opts = skiff_mount::MountOptions::parse(&m.options);
                let data: Vec<&str> = opts.data.iter().map(String::as_str).collect();
                long_overlay::mount(&data, opts.read_only(), target)
            }
            "overlay" | "bind" => skiff_mount::mount(m, target),
            other => {
                return Err(Error::InvalidArgument(format!(
                    "cannot mount type {other:?}"
                )))
            }
        };
        done.map_err(|e| io(format!("mounting {} on {}", m.type_, target.display()), e))?;
    }
    Ok(())
}

/// Detaches whatever is mounted on `target` (all layers of it).
pub fn unmount(target: &Path) -> Result<()> {
    skiff_mount::unmount_all(target).map_err(|e| io(format!("unmounting {}", target.display()), e))
}

pub use skiff_mount::mounts_under;
