//! The shim under test installed as `containerd-shim-runc-v2`, first on a test
//! containerd's PATH, and containers run with the runtime name `io.containerd.runc.v2`.
//! ctr sends the runc options (`--runc-binary`, `--runc-systemd-cgroup`) and the
//! checkpoint options (`--exit`, `--image-path`) only to that runtime name, so this is
//! how a test gives our shim the inputs the Go shim gets.

use crate::containerd::{shim_binary, stderr, Containerd, Options, BUSYBOX_IMAGE};
use skiff_test_support::bundle::TempDir;

pub const RUNTIME: &str = "io.containerd.runc.v2";

/// A containerd whose `io.containerd.runc.v2` is the shim under test; the directory
/// holding the copy must outlive it.
pub fn containerd(bin: &TempDir) -> Containerd {
    std::fs::copy(shim_binary(), bin.path().join("containerd-shim-runc-v2"))
        .expect("installing the shim as containerd-shim-runc-v2");
    Containerd::start_with(Options {
        path_prefix: Some(bin.path().to_path_buf()),
        ..Default::default()
    })
}

/// `ctr run -d --runtime io.containerd.runc.v2 [extra...] busybox ID ARGS...`, then waits
/// for it to run; returns the task's pid.
pub fn run_detached(cd: &Containerd, id: &str, extra: &[&str], args: &[&str]) -> u32 {
    let mut a = vec!["run", "-d", "--runtime", RUNTIME];
    a.extend_from_slice(extra);
    a.push(BUSYBOX_IMAGE);
    a.push(id);
    a.extend_from_slice(args);
    let out = cd.ctr(&a);
    assert!(out.status.success(), "ctr run -d {id}: {}", stderr(&out));
    cd.wait_status(id, "RUNNING")
}
