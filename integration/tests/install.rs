//! `make install` puts the shims where containerd finds them by runtime name:
//! `io.containerd.skiff.v2` resolves to `containerd-shim-skiff-v2` on containerd's PATH
//! (and `io.containerd.skiff-youki.v2` to the libcontainer shim, when that is under test).

use skiff_integration::bundle::TempDir;
use skiff_integration::containerd::{
    shim_file_name, shim_runtime_type, stderr, stdout, workspace_dir, Containerd, Options,
    BUSYBOX_IMAGE,
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
    for shim in ["containerd-shim-skiff-v2", "containerd-shim-skiff-youki-v2"] {
        assert!(bin.join(shim).is_file(), "{shim} is not installed");
    }
    let runtime = shim_runtime_type();
    for tool in ["skiffd", "skiff"] {
        let o = Command::new(bin.join(tool))
            .arg("--help")
            .output()
            .expect(tool);
        assert!(
            o.status.success() && stdout(&o).contains(&format!("Usage: {tool}")),
            "{tool} --help: {}",
            stderr(&o)
        );
    }

    let cd = Containerd::start_with(Options {
        path_prefix: Some(bin.clone()),
        ..Default::default()
    });
    let out = cd.ctr(&[
        "run",
        "--rm",
        "--runtime",
        &runtime,
        BUSYBOX_IMAGE,
        "by-name",
        "echo",
        "hello from skiff",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hello from skiff\n");

    // containerd ran the installed binary, not something else on its PATH.
    let out = cd.ctr(&[
        "run",
        "-d",
        "--runtime",
        &runtime,
        BUSYBOX_IMAGE,
        "which",
        "sleep",
        "300",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shim_pid: u32 = std::fs::read_to_string(cd.bundle("which").join("shim.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let exe = std::fs::read_link(format!("/proc/{shim_pid}/exe")).unwrap();
    let _ = cd.ctr(&["task", "kill", "--signal", "SIGKILL", "which"]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let _ = cd.ctr(&["task", "delete", "which"]);
    let _ = cd.ctr(&["container", "delete", "which"]);
    assert_eq!(exe, bin.join(shim_file_name()));
}
