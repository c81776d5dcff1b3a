//! What a sandbox leaves if its shim dies (killed, crashed): containerd then runs the
//! binary's `delete` in the sandbox's bundle, which removes it. The pod's files are
//! found from the bundle ([`super::files::remove_for_bundle`]); the cgroup directories
//! made for the holder, from a record in the bundle written before the holder starts.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const RECORD: &str = "skiff-sandbox-cgroups";
/// How long `delete` waits, at most, for a dead shim's holder to leave its cgroup
/// (containerd gives `delete` 5 s in all).
const HOLDER_EXIT: Duration = Duration::from_secs(1);

/// Records the cgroup directories made for the sandbox, one per line.
pub fn record(bundle: &Path, dirs: &[PathBuf]) -> io::Result<()> {
    if dirs.is_empty() {
        return Ok(());
    }
    let text: String = dirs.iter().map(|d| format!("{}\n", d.display())).collect();
    fs::write(bundle.join(RECORD), text)
}

/// The cgroup directories are gone: so is their record.
pub fn forget(bundle: &Path) {
    let _ = fs::remove_file(bundle.join(RECORD));
}

/// Removes what sandbox `id`, whose shim is gone, left: its /dev/shm mount, the links
/// the CRI follows and its files, its holder's cgroup directories (the holder died with
/// the shim). Does nothing for a bundle that never held a sandbox.
pub fn after_dead_shim(bundle: &Path, id: &str) {
    super::files::remove_for_bundle(bundle, id);
    let Ok(text) = fs::read_to_string(bundle.join(RECORD)) else {
        return;
    };
    // A holder killed with its shim may not have exited yet: its own cgroup empties a
    // moment later, and is waited for, a little. The parents made for it may hold the
    // pod's containers' cgroups, which are removed after their own shim's `delete`:
    // they are tried once.
    let deadline = Instant::now() + HOLDER_EXIT;
    for dir in text.lines().rev().filter(|l| is_cgroup_dir(l)) {
        let own = Path::new(dir).file_name().is_some_and(|n| n == id);
        loop {
            match fs::remove_dir(dir) {
                Err(e)
                    if own
                        && e.raw_os_error() == Some(libc::EBUSY)
                        && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => break,
            }
        }
    }
    forget(bundle);
}

/// Only directories under the cgroup mount are ever removed from a record.
fn is_cgroup_dir(line: &str) -> bool {
    let p = Path::new(line);
    p.starts_with("/sys/fs/cgroup/")
        && p.components()
            .all(|c| !matches!(c, std::path::Component::ParentDir))
}
