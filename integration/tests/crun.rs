//! crun as the runtime binary (`ctr run --runc-binary /usr/bin/crun`, the runtime option
//! BinaryName): a container runs, takes execs, pauses and resumes, and a checkpoint fails
//! with crun's own reason while the task runs on: Debian's crun is built without CRIU and
//! so has no checkpoint command at all.
//! crun 1.8 refuses hybrid cgroups, so on these hosts this records a skip; make test runs
//! it in its cgroup v2 VM stage.

use skiff_integration::bundle::TempDir;
use skiff_integration::containerd::{
    assert_binary_name_refused, shim_uses_libcontainer, stderr, stdout, BUSYBOX_IMAGE,
};
use skiff_integration::dropin;
use skiff_integration::machine::{has, Need};

#[test]
fn crun_runs_execs_pauses_and_refuses_a_checkpoint_clearly() {
    if !has(
        "crun_runs_execs_pauses_and_refuses_a_checkpoint_clearly",
        Need::Crun,
    ) {
        return;
    }
    // ctr sends --runc-binary only to the runtime name io.containerd.runc.v2.
    let bin = TempDir::new("skiff-crun-bin").unwrap();
    let cd = dropin::containerd(&bin);
    let out = cd.ctr(&[
        "run",
        "-d",
        "--runtime",
        dropin::RUNTIME,
        "--runc-binary",
        "/usr/bin/crun",
        BUSYBOX_IMAGE,
        "crunned",
        "sleep",
        "300",
    ]);
    if shim_uses_libcontainer() {
        assert_binary_name_refused(&cd, &out, "crunned");
        return;
    }
    assert!(out.status.success(), "{}", stderr(&out));
    let pid = cd.wait_status("crunned", "RUNNING");
    // crun, not runc, keeps this container: its state is under the runtime root.
    let root = cd.state_root();
    let state = std::process::Command::new("crun")
        .arg("--root")
        .arg(&root)
        .args(["state", "crunned"])
        .output()
        .unwrap();
    let state_text = String::from_utf8_lossy(&state.stdout);
    assert!(
        state.status.success() && state_text.contains("\"running\""),
        "crun state: {state_text}{}",
        String::from_utf8_lossy(&state.stderr)
    );
    assert!(
        state_text.contains(&format!("\"pid\": {pid}")),
        "crun knows the task's pid {pid}: {state_text}"
    );
    let out = cd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "crunned",
        "echo",
        "exec via crun",
    ]);
    assert_eq!(stdout(&out), "exec via crun\n", "{}", stderr(&out));
    let out = cd.ctr(&["task", "pause", "crunned"]);
    assert!(out.status.success(), "{}", stderr(&out));
    cd.wait_status("crunned", "PAUSED");
    let out = cd.ctr(&["task", "resume", "crunned"]);
    assert!(out.status.success(), "{}", stderr(&out));
    cd.wait_status("crunned", "RUNNING");
    let out = cd.ctr(&["task", "checkpoint", "crunned"]);
    assert!(
        !out.status.success(),
        "a checkpoint with a crun without CRIU"
    );
    let err = stderr(&out);
    skiff_integration::report(&format!(
        "checkpoint with crun: {}",
        err.trim().replace('\n', " | ")
    ));
    assert!(
        err.contains("crun checkpoint failed: unknown command checkpoint"),
        "crun's own reason, named as crun's: {err}"
    );
    assert_eq!(
        cd.wait_status("crunned", "RUNNING"),
        pid,
        "the task runs on"
    );
    cd.remove("crunned");
}
