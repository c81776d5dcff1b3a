//! runc-driver against runtimes that talk more than runc does: what a command prints on
//! stderr and stdout is read together, so a runtime that fills one pipe while the driver
//! reads the other cannot block the command (and with it a container's queue). No root.

use runc_driver::{GlobalOptions, Runtime};
use skiff_oci_runtime::OciRuntime;
use skiff_test_support::bundle::TempDir;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// A runtime script that writes `stderr_bytes` to stderr before it answers `features`.
fn chatty_runtime(dir: &Path, stderr_bytes: usize) -> PathBuf {
    let path = dir.join("chatty-runc");
    let script = format!(
        "#!/bin/sh\nhead -c {stderr_bytes} /dev/zero | tr '\\\\0' w >&2\necho '{{\"ociVersionMin\":\"1.0.0\"}}'\n"
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn a_runtime_that_fills_its_stderr_pipe_before_answering_is_heard_out() {
    let tmp = TempDir::new("rd-chatty").unwrap();
    // Four times what a pipe holds: the runtime blocks on stderr unless it is read.
    let binary = chatty_runtime(tmp.path(), 256 * 1024);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = Runtime::new(binary, GlobalOptions::default());
        let _ = tx.send(rt.features());
    });
    let answer = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("features did not return: the runtime is stuck writing its stderr");
    let doc = answer.expect("features");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&doc).unwrap()["ociVersionMin"],
        "1.0.0"
    );
}
