//! youki-driver with the real libcontainer on busybox bundles, as runc-driver's tests
//! drive runc: the same OciRuntime calls, the same observable results. Needs root.

use skiff_oci_runtime::{
    CreateOptions, DeleteOptions, Error, ExecOptions, KillOptions, OciRuntime, Stdio3,
};
use skiff_test_support::bundle::{busybox_bundle, TempDir};
use std::io::Read;
use std::path::Path;
use support::{
    cgroup_parent, pipe, read_pid, start_greeter, update_applies_a_memory_limit, wait_until_stopped,
};
use youki_driver::Libcontainer;

#[path = "../../runc-driver/tests/support/mod.rs"]
mod support;

fn runtime(dir: &Path) -> Libcontainer {
    Libcontainer::new(dir.join("state"))
}

fn id(name: &str) -> String {
    format!("yd-{name}-{}", std::process::id())
}

#[test]
fn lifecycle_output_exec_state_ps_pause_kill_delete() {
    let tmp = TempDir::new("yd-life").unwrap();
    let id = id("life");
    let (cgroup_path, _parent) = cgroup_parent(&id);
    let rt = runtime(tmp.path());
    start_greeter(&rt, tmp.path(), &id, &cgroup_path, "hello from youki");

    // exec: a second process in the container, with its own output and pid file.
    let process = serde_json::json!({
        "args": ["sh", "-c", "echo exec sees $(hostname)"],
        "cwd": "/",
        "env": ["PATH=/bin"],
        "user": {"uid": 0, "gid": 0},
    });
    let process_file = tmp.path().join("process.json");
    std::fs::write(&process_file, process.to_string()).unwrap();
    let (exec_r, w) = pipe();
    rt.exec(
        &id,
        &ExecOptions {
            process_file,
            pid_file: Some(tmp.path().join("exec.pid")),
            console_socket: None,
            detach: true,
        },
        Stdio3 {
            stdout: Some(w),
            ..Default::default()
        },
    )
    .expect("exec");
    assert!(read_pid(&tmp.path().join("exec.pid")) > 0);
    let mut text = String::new();
    std::fs::File::from(exec_r)
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.starts_with("exec sees "), "{text:?}");

    rt.pause(&id).expect("pause");
    assert_eq!(rt.state(&id).unwrap().status, "paused");
    rt.resume(&id).expect("resume");
    assert_eq!(rt.state(&id).unwrap().status, "running");

    // Deleting a running container without force is refused.
    let err = rt.delete(&id, &DeleteOptions::default()).unwrap_err();
    assert!(
        err.to_string().starts_with("libcontainer delete failed: "),
        "unexpected error: {err}"
    );

    rt.kill(&id, 9, &KillOptions { all: false }).expect("kill");
    wait_until_stopped(&rt, &id);
    let err = rt.kill(&id, 9, &KillOptions { all: false }).unwrap_err();
    assert!(err.to_string().contains("not running"), "{err}");
    rt.delete(&id, &DeleteOptions::default()).expect("delete");
    let err = rt.state(&id).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
}

/// containerd's CRI stops a pod with a Kill while the shim kills what the init left
/// running: libcontainer saves state.json in place on every kill, so at once they read
/// each other's half-written file ("EOF while parsing") or leave it mixed.
#[test]
fn kills_and_states_at_once_all_succeed_and_leave_the_state_whole() {
    let tmp = TempDir::new("yd-racing").unwrap();
    let id = id("racing");
    let (cgroup_path, _parent) = cgroup_parent(&id);
    let rt = runtime(tmp.path());
    start_greeter(&rt, tmp.path(), &id, &cgroup_path, "racing");
    let failures: Vec<String> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|n| {
                let (rt, id) = (&rt, &id);
                s.spawn(move || {
                    let mut failed = Vec::new();
                    for _ in 0..200 {
                        // SIGCONT: delivered, and harmless to sleep.
                        let all = KillOptions { all: n % 2 == 0 };
                        if let Err(e) = rt.kill(id, 18, &all) {
                            failed.push(format!("kill: {e}"));
                        }
                        if let Err(e) = rt.state(id) {
                            failed.push(format!("state: {e}"));
                        }
                    }
                    failed
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let state = rt.state(&id);
    rt.kill(&id, 9, &KillOptions { all: true }).expect("kill");
    wait_until_stopped(&rt, &id);
    rt.delete(&id, &DeleteOptions::default()).expect("delete");
    assert!(
        failures.is_empty(),
        "{} of 1600 calls failed, first: {:?}",
        failures.len(),
        failures.first()
    );
    assert_eq!(state.expect("state after").status, "running");
}

#[test]
fn create_of_a_missing_binary_fails_and_leaves_nothing() {
    let tmp = TempDir::new("yd-nope").unwrap();
    let id = id("nope");
    let (cgroup_path, _parent) = cgroup_parent(&id);
    let bundle = busybox_bundle(&tmp.path().join("bundle"), &["nope"], &cgroup_path).unwrap();
    let rt = runtime(tmp.path());
    let err = rt
        .create(&id, &bundle, &CreateOptions::default(), Stdio3::default())
        .unwrap_err();
    assert!(matches!(err, Error::Failed { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with("libcontainer create failed: ") && text.contains("nope"),
        "{text}"
    );
    assert!(rt.state(&id).is_err(), "no container is left");
    assert!(!tmp.path().join("state").join(&id).exists());
}

#[test]
fn update_applies_resources() {
    let tmp = TempDir::new("yd-upd").unwrap();
    update_applies_a_memory_limit(&runtime(tmp.path()), tmp.path(), &id("upd"));
}

#[test]
fn checkpoint_and_refused_settings_are_unsupported_errors() {
    let tmp = TempDir::new("yd-unsup").unwrap();
    let rt = runtime(tmp.path());
    let err = rt.checkpoint("x", &Default::default()).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    let rt = runtime(tmp.path()).refusing("BinaryName \"crun\": no runtime binary runs here");
    let err = rt
        .create(
            "x",
            tmp.path(),
            &CreateOptions::default(),
            Stdio3::default(),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "libcontainer does not support create: BinaryName \"crun\": no runtime binary runs here"
    );
}

/// As `ctr run --rootfs DIR id /bin/echo` sends it: no environment at all. runc runs a
/// process named by its path without PATH, and so does this driver.
#[test]
fn a_process_with_no_path_variable_runs_by_its_path() {
    let tmp = TempDir::new("yd-nopath").unwrap();
    let id = id("nopath");
    let (cgroup_path, _parent) = cgroup_parent(&id);
    let bundle = busybox_bundle(
        &tmp.path().join("bundle"),
        &["/bin/echo", "no PATH needed"],
        &cgroup_path,
    )
    .unwrap();
    let config = bundle.join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    spec["process"]["env"] = serde_json::json!([]);
    std::fs::write(&config, spec.to_string()).unwrap();
    let rt = runtime(tmp.path());
    let (out_r, w) = pipe();
    rt.create(
        &id,
        &bundle,
        &CreateOptions::default(),
        Stdio3 {
            stdout: Some(w),
            ..Default::default()
        },
    )
    .expect("create");
    rt.start(&id).expect("start");
    let mut out = String::new();
    std::fs::File::from(out_r).read_to_string(&mut out).unwrap();
    wait_until_stopped(&rt, &id);
    rt.delete(&id, &DeleteOptions::default()).expect("delete");
    assert_eq!(out, "no PATH needed\n");
}
