//! Moving a process into a cgroup makes the kernel wait for an RCU grace period (7 to
//! 16 ms on these machines) the first time after the cgroups have been quiet: writers
//! of `cgroup.procs` share one global lock whose fast path must first be switched off.
//! Every container create pays it once, when the runtime moves the new init into its
//! cgroup; later moves within the same period are quick.
//!
//! So at the start of Create a short-lived thread moves the shim into the cgroup it is
//! already in (a no-op move that takes the same lock), and the grace period passes while
//! the shim mounts the rootfs, opens the FIFOs and the runtime sets up; by the time the
//! runtime writes the init's pid the lock is quick. Best effort: any failure only means
//! the runtime waits as it would have.

use skiff_cgroups::Cgroup;
use std::path::PathBuf;

/// Starts the grace period in the background and returns at once.
pub fn begin() {
    let spawned = std::thread::Builder::new()
        .name("attach-warmup".into())
        .stack_size(64 * 1024)
        .spawn(|| {
            if let Some(procs) = own_procs_file() {
                // "0": the writing process itself, into the cgroup it is in.
                let _ = std::fs::write(procs, "0");
            }
        });
    drop(spawned);
}

/// `cgroup.procs` of the shim's own cgroup in one hierarchy.
fn own_procs_file() -> Option<PathBuf> {
    let cgroup = Cgroup::of_pid(std::process::id()).ok()?;
    Some(cgroup.any_dir()?.join("cgroup.procs"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_stays_in_its_cgroups() {
        let before = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let procs = own_procs_file().expect("the test's own cgroup");
        assert!(procs.exists(), "{} is missing", procs.display());
        begin();
        // The warm-up thread is detached: give its write time to land.
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert_eq!(
            std::fs::read_to_string("/proc/self/cgroup").unwrap(),
            before
        );
    }
}
