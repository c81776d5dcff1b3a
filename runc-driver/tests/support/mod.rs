//! What the tests of every OciRuntime implementation share: runc-driver's real_runc.rs
//! and youki-driver's real_libcontainer.rs (which includes this file by path) drive
//! their runtime through the same trait and observe it the same way.

use skiff_oci_runtime::{CreateOptions, DeleteOptions, OciRuntime, Stdio3};
use skiff_test_support::bundle::busybox_bundle;
use skiff_test_support::cgroup::CgroupCleanup;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
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

/// Creates `id` from a busybox bundle in `dir` whose process says `greeting` and sleeps,
/// its stdout on a pipe; checks that it is created with the pid of its pid file, starts
/// it, and checks the greeting, that it runs and that ps lists its init alone. Returns the
/// bundle and the init's pid.
pub fn start_greeter(
    rt: &dyn OciRuntime,
    dir: &Path,
    id: &str,
    cgroup_path: &str,
    greeting: &str,
) -> (PathBuf, u32) {
    let script = format!("echo {greeting}; exec sleep 30");
    let bundle = busybox_bundle(&dir.join("bundle"), &["sh", "-c", &script], cgroup_path).unwrap();
    let (out_r, w) = pipe();
    rt.create(
        id,
        &bundle,
        &CreateOptions {
            pid_file: Some(bundle.join("init.pid")),
            ..Default::default()
        },
        Stdio3 {
            stdout: Some(w),
            ..Default::default()
        },
    )
    .expect("create");
    let pid = read_pid(&bundle.join("init.pid"));
    let state = rt.state(id).expect("state");
    assert_eq!(state.status, "created");
    assert_eq!(state.pid, pid);

    rt.start(id).expect("start");
    let expected = format!("{greeting}\n");
    let mut line = vec![0u8; expected.len()];
    std::fs::File::from(out_r).read_exact(&mut line).unwrap();
    assert_eq!(line, expected.as_bytes());
    assert_eq!(rt.state(id).unwrap().status, "running");
    assert_eq!(rt.ps(id).expect("ps"), vec![pid]);
    (bundle, pid)
}

/// Update with a 64 MiB memory limit reaches the running container's memory cgroup.
pub fn update_applies_a_memory_limit(rt: &dyn OciRuntime, dir: &Path, id: &str) {
    let (cgroup, _parent) = cgroup_parent(id);
    let bundle = busybox_bundle(&dir.join("bundle"), &["sleep", "30"], &cgroup).unwrap();
    rt.create(id, &bundle, &CreateOptions::default(), Stdio3::default())
        .expect("create");
    rt.start(id).expect("start");
    let result = rt.update(id, br#"{"memory":{"limit":67108864}}"#);
    let limit = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/memory{cgroup}/memory.limit_in_bytes"
    ))
    .or_else(|_| std::fs::read_to_string(format!("/sys/fs/cgroup{cgroup}/memory.max")));
    rt.delete(id, &DeleteOptions { force: true })
        .expect("delete");
    result.expect("update");
    assert_eq!(limit.expect("memory limit file").trim(), "67108864");
}
