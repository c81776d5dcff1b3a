//! What the tests of every OciRuntime implementation share: runc-driver's real_runc.rs
//! and youki-driver's real_libcontainer.rs (which includes this file by path) drive
//! their runtime through the same trait and observe it the same way.

use runc_driver::OciRuntime;
use skiff_integration::containerd::CgroupCleanup;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::{Duration, Instant};

/// The cgroup path for a test's container, under a parent removed when the test ends.
pub fn cgroup_parent(id: &str) -> (String, CgroupCleanup) {
    let parent = format!("skiff-test-{id}");
    (format!("/{parent}/{id}"), CgroupCleanup(parent))
}

pub fn pipe() -> (OwnedFd, OwnedFd) {
    let (r, w) = std::io::pipe().expect("pipe");
    (r.into(), w.into())
}

/// The pid a runtime wrote to a pid file.
pub fn read_pid(path: &Path) -> u32 {
    std::fs::read_to_string(path)
        .expect("pid file")
        .trim()
        .parse()
        .expect("a pid")
}

/// Polls the runtime's state of `id` until it says stopped (10 s at most).
pub fn wait_until_stopped(rt: &dyn OciRuntime, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = rt.state(id).expect("state");
        if state.status == "stopped" {
            return;
        }
        assert!(Instant::now() < deadline, "{id} still {}", state.status);
        std::thread::sleep(Duration::from_millis(20));
    }
}
