//! Checkpoint and restore end to end through containerd, where CRIU works (on these
//! hosts it does not: make test runs this in its cgroup v2 VM stage): `ctr task
//! checkpoint` into an image while the task runs on, then with `--exit`; and a
//! checkpoint restored into a new container whose task carries on counting from the
//! checkpoint's memory. The libcontainer shim has no CRIU support: there each checks the
//! clear refusal.
//!
//! The shim runs as `io.containerd.runc.v2` (skiff_integration::dropin): ctr sends the
//! checkpoint options (`--exit`) to no other runtime name. ctr 1.6 restores only what
//! `ctr container checkpoint --task` wrote (a `ctr task checkpoint` image lacks the
//! container's spec and runtime: "image name not found in index"); both reach the shim as
//! the same Checkpoint request.

use skiff_integration::bundle::TempDir;
use skiff_integration::containerd::{shim_uses_libcontainer, stderr, stdout, Containerd};
use skiff_integration::dropin;
use skiff_integration::machine::{has, Need};
use skiff_integration::unified::eventually;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(60);

/// Appends 1, 2, 3... to /count; /started gets a line each time the script starts. A
/// process restored from memory goes on with the next number and starts nothing.
const COUNTER: &str = "echo started >> /started; i=0; \
                       while true; do i=$((i+1)); echo $i >> /count; usleep 100000; done";

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The libcontainer shim refuses, saying why, and the task runs on.
fn assert_refused(cd: &Containerd, id: &str, args: &[&str]) {
    let pid = cd.wait_status(id, "RUNNING");
    let out = cd.ctr(args);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(
        stderr(&out).contains("libcontainer does not support checkpoint: "),
        "{}",
        stderr(&out)
    );
    assert_eq!(cd.wait_status(id, "RUNNING"), pid);
}

/// Waits for `ctr task ls` to show the restored task RUNNING (restores take seconds in
/// the VM); fails with ctr's words if `ctr container restore` gave up.
fn wait_restored(cd: &Containerd, id: &str, restore: &mut std::process::Child) {
    let deadline = Instant::now() + LONG;
    while cd.task_line(id).and_then(|c| c.get(2).cloned()).as_deref() != Some("RUNNING") {
        if let Ok(Some(status)) = restore.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = restore.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            panic!("ctr container restore ended ({status}) without a running {id}: {err}");
        }
        assert!(
            Instant::now() < deadline,
            "{id} never ran: {:?}",
            cd.task_line(id)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_checkpoint_image_restores_into_a_new_task_that_keeps_counting() {
    if !has(
        "a_checkpoint_image_restores_into_a_new_task_that_keeps_counting",
        Need::Criu,
    ) {
        return;
    }
    let bin = TempDir::new("skiff-ckpt-bin").unwrap();
    let cd = dropin::containerd(&bin);
    dropin::run_detached(&cd, "counter", &[], &["sh", "-c", COUNTER]);
    let count = cd.bundle("counter").join("rootfs/count");
    assert!(eventually(LONG, || lines(&count).len() >= 5), "it counts");
    if shim_uses_libcontainer() {
        assert_refused(
            &cd,
            "counter",
            &[
                "container",
                "checkpoint",
                "--task",
                "counter",
                "skiff.test/c:1",
            ],
        );
        cd.remove("counter");
        return;
    }
    // A container checkpoint (the task's CRIU image, its rw layer, its image) restored as
    // a new container: its task is the same shell, from where it was checkpointed.
    let out = cd.ctr(&[
        "container",
        "checkpoint",
        "--task",
        "--rw",
        "--image",
        "counter",
        "skiff.test/counter:checkpoint",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    cd.remove("counter");
    // ctr stays attached to the restored task's stdio; it ends with the task.
    let mut restore = cd
        .ctr_command()
        .args(["container", "restore", "--live", "--rw", "counter2"])
        .arg("skiff.test/counter:checkpoint")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ctr container restore");
    wait_restored(&cd, "counter2", &mut restore);
    let count2 = cd.bundle("counter2").join("rootfs/count");
    let first = lines(&count2).len();
    assert!(
        first >= 5,
        "the restored rw layer holds the count from before the checkpoint: {first} lines"
    );
    assert!(
        eventually(LONG, || lines(&count2).len() > first + 3),
        "the restored task counts on: {} lines",
        lines(&count2).len()
    );
    let numbers = lines(&count2);
    for (i, l) in numbers.iter().enumerate() {
        assert_eq!(
            l,
            &(i + 1).to_string(),
            "the count goes on without restarting: {numbers:?}"
        );
    }
    let started = lines(&cd.bundle("counter2").join("rootfs/started"));
    assert_eq!(started.len(), 1, "the script started once: {started:?}");
    // The restored task is served like any other: Stats through containerd.
    let out = cd.ctr(&["task", "metrics", "counter2"]);
    assert!(
        out.status.success() && stdout(&out).contains("pids.current"),
        "metrics of the restored task: {}{}",
        stdout(&out),
        stderr(&out)
    );
    cd.remove("counter2");
    let _ = skiff_integration::containerd::wait_with_timeout(&mut restore, LONG);
}

#[test]
fn task_checkpoints_go_into_images_and_with_exit_stop_the_task() {
    if !has(
        "task_checkpoints_go_into_images_and_with_exit_stop_the_task",
        Need::Criu,
    ) {
        return;
    }
    let bin = TempDir::new("skiff-ckpt-bin").unwrap();
    let cd = dropin::containerd(&bin);
    dropin::run_detached(&cd, "leaver", &[], &["sh", "-c", COUNTER]);
    let count = cd.bundle("leaver").join("rootfs/count");
    assert!(eventually(LONG, || lines(&count).len() >= 3), "it counts");
    if shim_uses_libcontainer() {
        assert_refused(&cd, "leaver", &["task", "checkpoint", "leaver"]);
        assert_refused(&cd, "leaver", &["task", "checkpoint", "--exit", "leaver"]);
        cd.remove("leaver");
        return;
    }
    // ctr task checkpoint: an image in containerd's store; the task goes on.
    let out = cd.ctr(&["task", "checkpoint", "leaver"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let image = stdout(&out).trim().to_string();
    assert!(
        image.starts_with("containerd.io/checkpoint/leaver:"),
        "ctr names the checkpoint image: {image:?}"
    );
    let listed = stdout(&cd.ctr(&["images", "ls"]));
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&image) && l.contains("containerd.io/checkpoint=true")),
        "{listed}"
    );
    let n = lines(&count).len();
    assert!(
        eventually(LONG, || lines(&count).len() > n),
        "still counting"
    );
    cd.remove("leaver");
    // --exit, on a container of its own: the task ends once its checkpoint is written.
    dropin::run_detached(&cd, "exiter", &[], &["sh", "-c", COUNTER]);
    let count = cd.bundle("exiter").join("rootfs/count");
    assert!(eventually(LONG, || lines(&count).len() >= 3), "it counts");
    let out = cd.ctr(&["task", "checkpoint", "--exit", "exiter"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let image = stdout(&out).trim().to_string();
    assert!(
        image.starts_with("containerd.io/checkpoint/exiter:"),
        "{image:?}"
    );
    skiff_integration::unified::wait_status(&cd, "exiter", "STOPPED", LONG);
    let n = lines(&count).len();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(lines(&count).len(), n, "nothing counts after --exit");
    cd.remove("exiter");
}
