//! A task's bundle directory (`STATE/bundles/NS/ID`): `config.json`, `rootfs/`, the
//! shim's `log` FIFO and files. It is removed only once nothing is mounted under it, so
//! a removal never descends into a container's mounted root filesystem.

use crate::error::{io, Error, Result};
use skiff_mount::{mounts_under, unmount_all as unmount};
use std::path::Path;

/// A fresh bundle with `spec` as its config.json (one a crash left is removed first).
pub fn prepare(bundle: &Path, spec: &[u8]) -> Result<()> {
    remove(bundle)?;
    std::fs::create_dir_all(bundle.join("rootfs")).map_err(|e| io("creating the bundle", e))?;
    std::fs::write(bundle.join("config.json"), spec).map_err(|e| io("writing config.json", e))
}

/// Unmounts what is under the bundle, then removes it; refuses if a mount stays.
pub fn remove(bundle: &Path) -> Result<()> {
    for m in mounts_under(bundle) {
        let _ = unmount(&m);
    }
    if let Some(m) = mounts_under(bundle).first() {
        return Err(Error::FailedPrecondition(format!(
            "{} is still mounted: the bundle stays",
            m.display()
        )));
    }
    match std::fs::remove_dir_all(bundle) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(format!("removing {}", bundle.display()), e)),
    }
}

/// The address a shim wrote into its bundle at `start` (containerd's shims do).
pub fn written_address(bundle: &Path) -> Option<String> {
    std::fs::read_to_string(bundle.join("address"))
        .ok()
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
}
