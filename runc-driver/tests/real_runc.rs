//! runc-driver against the machine's real runc (or the one in the directory
//! `$SKIFF_RUNC_BIN` names: make test runs these with runc 1.5.1 too), on busybox
//! bundles. Needs root.

use runc_driver::{GlobalOptions, Runtime};
use skiff_oci_runtime::{CreateOptions, DeleteOptions, Error, KillOptions, OciRuntime, Stdio3};
use skiff_test_support::bundle::{busybox_bundle, TempDir};
use std::io::Read;
use std::path::Path;
use std::time::Duration;
use support::{cgroup_parent, start_greeter, update_applies_a_memory_limit, wait_until_stopped};

mod support;

/// The runc under test.
fn runc() -> String {
    match std::env::var("SKIFF_RUNC_BIN") {
        Ok(dir) if !dir.is_empty() => format!("{dir}/runc"),
        _ => "runc".into(),
    }
}

fn runtime(dir: &Path) -> Runtime {
    Runtime::new(
        runc(),
        GlobalOptions {
            root: Some(dir.join("runc-root")),
            log: Some(dir.join("log.json")),
            systemd_cgroup: false,
        },
    )
}

fn id(name: &str) -> String {
    format!("rd-{name}-{}", std::process::id())
}

#[test]
fn lifecycle_output_state_ps_kill_delete() {
    let tmp = TempDir::new("rd-life").unwrap();
    let id = id("life");
    let (cgroup_path, _parent) = cgroup_parent(&id);
    let rt = runtime(tmp.path());
    start_greeter(&rt, tmp.path(), &id, &cgroup_path, "hello from runc");

    // Deleting a running container without force is refused with runc's own words.
    let err = rt.delete(&id, &DeleteOptions::default()).unwrap_err();
    assert!(
        err.to_string().starts_with("runc delete failed: "),
        "unexpected error: {err}"
    );
    assert!(
        err.to_string().contains("running"),
        "unexpected error: {err}"
    );

    rt.kill(&id, 9, &KillOptions { all: true }).expect("kill");
    wait_until_stopped(&rt, &id);
    rt.delete(&id, &DeleteOptions::default()).expect("delete");
    let err = rt.state(&id).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[test]
fn create_of_a_missing_binary_fails_with_runcs_message() {
    let tmp = TempDir::new("rd-nope").unwrap();
    let id = id("nope");
    let (cgroup_path, _parent) = cgroup_parent(&id);
    let bundle = busybox_bundle(&tmp.path().join("bundle"), &["nope"], &cgroup_path).unwrap();
    let rt = runtime(tmp.path());
    let err = rt
        .create(&id, &bundle, &CreateOptions::default(), Stdio3::default())
        .unwrap_err();
    assert!(matches!(err, Error::Failed { .. }), "{err:?}");
    // runc's own words, once: 1.2 and later say where the exec failed.
    let exec_failed = "exec: \"nope\": executable file not found in $PATH";
    assert!(
        [
            format!("runc create failed: unable to start container process: {exec_failed}"),
            format!(
                "runc create failed: unable to start container process: error during container init: {exec_failed}"
            ),
        ]
        .contains(&err.to_string()),
        "{err}"
    );
    // A failed create leaves no container behind.
    let _ = rt.delete(&id, &DeleteOptions { force: true });
    assert!(rt.state(&id).is_err());
}

#[test]
fn update_applies_resources() {
    let tmp = TempDir::new("rd-upd").unwrap();
    update_applies_a_memory_limit(&runtime(tmp.path()), tmp.path(), &id("upd"));
}

#[test]
fn missing_runtime_binary_is_a_spawn_error() {
    let rt = Runtime::new("/nonexistent/runc", GlobalOptions::default());
    let err = rt.state("x").unwrap_err();
    assert!(matches!(err, Error::Spawn { .. }));
    assert!(
        err.to_string()
            .starts_with("cannot run OCI runtime \"/nonexistent/runc\": No such file"),
        "{err}"
    );
}

#[test]
fn terminal_master_arrives_over_the_console_socket() {
    let tmp = TempDir::new("rd-tty").unwrap();
    let id = id("tty");
    let (cgroup_path, _parent) = cgroup_parent(&id);
    let dir = tmp.path().join("bundle");
    let bundle = busybox_bundle(&dir, &["sh", "-c", "tty; sleep 30"], &cgroup_path).unwrap();
    // Make the process a terminal one.
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    spec["process"]["terminal"] = serde_json::Value::Bool(true);
    std::fs::write(bundle.join("config.json"), spec.to_string()).unwrap();

    let rt = runtime(tmp.path());
    let console = skiff_oci_runtime::ConsoleSocket::new(Some(tmp.path())).unwrap();
    rt.create(
        &id,
        &bundle,
        &CreateOptions {
            console_socket: Some(console.path().to_path_buf()),
            ..Default::default()
        },
        Stdio3::default(),
    )
    .expect("create with a terminal");
    let master = console
        .receive_master(Duration::from_secs(5))
        .expect("pty master");
    rt.start(&id).expect("start");
    let mut out = std::fs::File::from(master);
    let mut buf = [0u8; 64];
    let n = out.read(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    rt.delete(&id, &DeleteOptions { force: true })
        .expect("delete");
    assert!(text.starts_with("/dev/pts/"), "tty printed {text:?}");
    let socket_path = console.path().to_path_buf();
    drop(console);
    assert!(!socket_path.exists(), "the console socket is removed");
}
