//! `make install` puts the shim where containerd finds it by runtime name:
//! `io.containerd.skiff.v2` resolves to `containerd-shim-skiff-v2` on containerd's PATH.

use skiff_integration::bundle::TempDir;
use skiff_integration::containerd::{
    stderr, stdout, workspace_dir, Containerd, Options, BUSYBOX_IMAGE,
};
use std::process::Command;

#[test]
fn installed_shim_runs_by_runtime_name() {
    let prefix = TempDir::new("skiff-prefix").unwrap();
    let out = Command::new("make")
        .arg("-C")
        .arg(workspace_dir())
        .arg("install")
        .arg(format!("PREFIX={}", prefix.path().display()))
        .output()
        .expect("running make install");
    assert!(
        out.status.success(),
        "make install: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let bin = prefix.path().join("bin");
    assert!(bin.join("containerd-shim-skiff-v2").is_file());

    let cd = Containerd::start_with(Options {
        path_prefix: Some(bin.clone()),
    });
    let out = cd.ctr(&[
        "run",
        "--rm",
        "--runtime",
        "io.containerd.skiff.v2",
        BUSYBOX_IMAGE,
        "by-name",
        "echo",
        "hello from skiff",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hello from skiff\n");
    // containerd ran the installed binary, not something else on its PATH.
    let log = cd.log();
    assert!(
        log.contains(&bin.join("containerd-shim-skiff-v2").display().to_string())
            || log.contains("runtime=io.containerd.skiff.v2"),
        "containerd's log does not mention our shim"
    );
}
