//! A create and an exec while another thread holds std's environment lock, as a
//! thread of the shim holds it for reading whenever it spawns a process (a logger, a
//! runtime command) or reads a variable. libcontainer works in a fork of the caller:
//! the fork gets the lock in the state it had, held by a reader that does not exist
//! there and never lets go. Reading it again there is fine; writing it waits forever.
//! libcontainer's default executor wrote the container's environment with
//! `std::env::set_var` in the container's process, so a Create or an Exec that forked at
//! such a moment hung for good (rarely: the lock is held for microseconds).
//!
//! Here it is not rare: a thread is parked inside `std::env::vars_os`, holding the
//! lock, by this test binary's allocator, which stops that thread at its next
//! allocation (the copy of the environment it makes under the lock). Needs root.

use skiff_oci_runtime::{
    CreateOptions, DeleteOptions, ExecOptions, KillOptions, OciRuntime, Stdio3,
};
use skiff_test_support::bundle::{busybox_bundle, TempDir};
use skiff_test_support::cgroup::{kill_cgroup_tree, CgroupCleanup};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use youki_driver::Libcontainer;

/// The system allocator, which parks a thread that asked for it at its next allocation
/// until [`RELEASE`].
struct Parking;

thread_local! {
    static PARK_AT_NEXT_ALLOCATION: Cell<bool> = const { Cell::new(false) };
}
static PARKED: AtomicBool = AtomicBool::new(false);
static RELEASE: AtomicBool = AtomicBool::new(false);

// SAFETY: every call goes to the system allocator; parking only delays it.
unsafe impl GlobalAlloc for Parking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let park = PARK_AT_NEXT_ALLOCATION
            .try_with(|p| p.replace(false))
            .unwrap_or(false);
        if park {
            PARKED.store(true, Ordering::SeqCst);
            while !RELEASE.load(Ordering::SeqCst) {
                // SAFETY: a plain sleep; nothing here allocates.
                unsafe { libc::usleep(1000) };
            }
        }
        // SAFETY: the caller's layout, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from System.alloc above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Parking = Parking;

/// A thread parked inside `std::env::vars_os`, the environment lock held for reading.
fn hold_the_environment_lock() -> std::thread::JoinHandle<()> {
    let holder = std::thread::spawn(|| {
        PARK_AT_NEXT_ALLOCATION.with(|p| p.set(true));
        let _ = std::env::vars_os().count();
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while !PARKED.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the holder never parked");
        std::thread::sleep(Duration::from_millis(1));
    }
    holder
}

fn pipe() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    let (r, w) = std::io::pipe().expect("pipe");
    (r.into(), w.into())
}

/// Runs `work` on a thread of its own; false if it did not end within `limit`.
fn ends_within(limit: Duration, work: impl FnOnce() + Send + 'static) -> bool {
    let worker = std::thread::spawn(work);
    let deadline = Instant::now() + limit;
    while !worker.is_finished() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    worker.join().expect("the work panicked");
    true
}

#[test]
fn create_and_exec_succeed_while_another_thread_holds_the_environment_lock() {
    let tmp = TempDir::new("yd-envlock").unwrap();
    let id = format!("yd-envlock-{}", std::process::id());
    let parent = format!("skiff-test-{id}");
    let _cleanup = CgroupCleanup(parent.clone());
    let script = "echo init says $GREETING; exec sleep 30";
    let bundle = busybox_bundle(
        &tmp.path().join("bundle"),
        &["sh", "-c", script],
        &format!("/{parent}/{id}"),
    )
    .unwrap();
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    spec["process"]["env"] = serde_json::json!(["PATH=/bin", "GREETING=hello"]);
    std::fs::write(bundle.join("config.json"), spec.to_string()).unwrap();
    let process_file = tmp.path().join("process.json");
    let mut exec = spec["process"].clone();
    exec["args"] = serde_json::json!(["sh", "-c", "echo exec says $GREETING"]);
    std::fs::write(&process_file, exec.to_string()).unwrap();

    let holder = hold_the_environment_lock();
    let rt = Libcontainer::new(tmp.path().join("state"));
    let (init_out, init_w) = pipe();
    let (exec_out, exec_w) = pipe();
    let (worker_rt, worker_id) = (rt.clone(), id.clone());
    let finished = ends_within(Duration::from_secs(30), move || {
        let rt = worker_rt;
        let stdout = |w| Stdio3 {
            stdout: Some(w),
            ..Default::default()
        };
        rt.create(
            &worker_id,
            &bundle,
            &CreateOptions::default(),
            stdout(init_w),
        )
        .expect("create");
        rt.start(&worker_id).expect("start");
        let exec = ExecOptions {
            process_file,
            pid_file: None,
            console_socket: None,
            detach: true,
        };
        rt.exec(&worker_id, &exec, stdout(exec_w)).expect("exec");
    });
    if !finished {
        // The container's process waits for a lock nobody will free: end it, and the
        // helper waiting for it, then the worker's calls fail and return.
        kill_cgroup_tree(&parent);
        kill_children();
    }
    RELEASE.store(true, Ordering::SeqCst);
    holder.join().unwrap();
    let _ = rt.kill(&id, 9, &KillOptions { all: true });
    std::thread::sleep(Duration::from_millis(200));
    let _ = rt.delete(&id, &DeleteOptions { force: true });
    assert!(
        finished,
        "create, start and exec did not finish in 30 s while a thread held the environment lock"
    );
    let read = |fd: std::os::fd::OwnedFd| {
        let mut text = String::new();
        let mut f = std::fs::File::from(fd);
        let _ = f.read_to_string(&mut text);
        text
    };
    assert_eq!(read(exec_out), "exec says hello\n");
    assert!(read(init_out).starts_with("init says hello\n"));
}

/// SIGKILLs this process's children (the libcontainer helpers it forked).
fn kill_children() {
    let me = std::process::id();
    for task in std::fs::read_dir(format!("/proc/{me}/task"))
        .into_iter()
        .flatten()
    {
        let Ok(task) = task else { continue };
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for pid in children
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            // SAFETY: kill(2) of a child of this test process.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}
