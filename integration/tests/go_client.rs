//! What containerd's Go clients (ctr, nerdctl, BuildKit, Docker's containerd integration)
//! rely on from a shim beyond the Task API's messages, as containerd's Go shim does it:
//! its OOM score, the legacy runc options a 1.x client sends to any runtime not named
//! io.containerd.runc.v2, no process outliving a container that has no PID namespace of
//! its own, and `-info` answered for containerd 2.2 and later.

use skiff_integration::containerd::{shim_binary, stderr, stdout, Containerd, BUSYBOX_IMAGE};
use skiff_integration::proc;
use std::time::{Duration, Instant};

fn shim() -> String {
    shim_binary().to_string_lossy().into_owned()
}

/// The pid in a bundle's shim.pid.
fn shim_pid(cd: &Containerd, id: &str) -> u32 {
    std::fs::read_to_string(cd.bundle(id).join("shim.pid"))
        .expect("shim.pid")
        .trim()
        .parse()
        .expect("a pid")
}

/// `ctr run --rm` of `true` with the shim under test, which must succeed.
fn run_true(cd: &Containerd, id: &str) {
    let shim = shim();
    let out = cd.ctr(&["run", "--rm", "--runtime", &shim, BUSYBOX_IMAGE, id, "true"]);
    assert!(out.status.success(), "ctr run: {}", stderr(&out));
}

fn oom_score_adj(pid: u32) -> i32 {
    std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
        .expect("oom_score_adj")
        .trim()
        .parse()
        .expect("a score")
}

#[test]
fn the_shims_oom_score_is_one_above_containerds() {
    let cd = Containerd::start();
    // Raising a score needs no privilege; the shim inherits containerd's at start.
    std::fs::write(format!("/proc/{}/oom_score_adj", cd.pid()), "200").unwrap();
    cd.run_detached("scored", &[], &["sleep", "300"]);
    let shim = shim_pid(&cd, "scored");
    assert_eq!(
        oom_score_adj(shim),
        201,
        "the shim's OOM score (containerd's is 200)"
    );
    cd.remove("scored");
}

/// containerd 2.2 and later run `SHIM -info` before a task of any runtime but runc's and
/// log an error when it fails (then CRI offers the kubelet no user namespaces and no
/// recursive read-only mounts). Older ones never ask.
#[test]
fn containerd_reads_the_shims_runtime_info() {
    let cd = Containerd::start();
    run_true(&cd, "info");
    let log = cd.log();
    let failures: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("failed to load runtime info"))
        .collect();
    assert!(failures.is_empty(), "containerd's log: {failures:#?}");
}

/// A containerd logging at debug level starts its shims with `-debug`; the shim's own
/// info and debug lines then reach containerd's log through the bundle's `log` FIFO.
#[test]
fn the_shims_debug_lines_reach_containerds_log() {
    let cd = Containerd::start();
    run_true(&cd, "debugged");
    // containerd copies the shim's log in the background: give it a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    let seen = |log: &str, what: &str| log.lines().any(|l| l.contains(what));
    let mut log = cd.log();
    while !(seen(&log, "serving on") && seen(&log, "Task/Create")) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        log = cd.log();
    }
    let shim_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("serving on") || l.contains("Task/"))
        .collect();
    assert!(
        seen(&log, "serving on"),
        "the shim's info line is missing from containerd's log: {shim_lines:#?}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("level=debug") && l.contains("Task/Create")),
        "no debug line of the shim in containerd's log: {shim_lines:#?}"
    );
}

/// `ctr run --no-pivot` has a 1.x client send `containerd.linux.runc.CreateOptions` (2.x
/// clients send the runc options): the task runs, with runc told not to pivot_root.
#[test]
fn a_task_with_legacy_runc_options_runs() {
    let cd = Containerd::start();
    let out = cd.ctr(&[
        "run",
        "--rm",
        "--no-pivot",
        "--runtime",
        &shim(),
        BUSYBOX_IMAGE,
        "legacy",
        "echo",
        "ran without pivot_root",
    ]);
    assert!(out.status.success(), "ctr run --no-pivot: {}", stderr(&out));
    assert_eq!(stdout(&out), "ran without pivot_root\n");
}

/// A container that joins the host's PID namespace forks a worker, and its init exits:
/// the worker is killed then, not when the task is deleted (the kernel would end it with
/// a PID namespace of the container's own), so nothing holds the task's output open.
#[test]
fn a_task_in_the_hosts_pid_namespace_leaves_no_process_behind() {
    let cd = Containerd::start();
    let host_pid_ns = format!("pid:/proc/{}/ns/pid", std::process::id());
    cd.run_detached(
        "hostpid",
        &["--with-ns", &host_pid_ns],
        &["sh", "-c", "sleep 301 & exec sleep 2"],
    );
    let shim = shim_pid(&cd, "hostpid");
    let deadline = Instant::now() + Duration::from_secs(5);
    let worker = loop {
        let found = proc::descendants(shim)
            .into_iter()
            .find(|p| proc::cmdline(*p) == "sleep 301");
        match found {
            Some(pid) => break pid,
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            None => panic!("the worker never ran"),
        }
    };
    cd.wait_status("hostpid", "STOPPED");
    // The task is stopped but not deleted: its worker must already be gone.
    let deadline = Instant::now() + Duration::from_secs(2);
    while proc::alive(worker) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !proc::alive(worker),
        "the worker {worker} outlived its container's init"
    );
    cd.remove("hostpid");
}
