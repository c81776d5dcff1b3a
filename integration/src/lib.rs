//! Helpers for skiff's end-to-end tests: a busybox rootfs and OCI bundle built from the
//! machine's busybox-static (no network), a private containerd per test, and `ctr`.

pub mod containerd;
pub mod cri;
pub mod dropin;
pub mod hung_fs;
pub mod machine;
pub mod oci;
pub mod parity;
pub mod proc;
pub mod pty;
pub mod registry;
pub mod runc;
pub mod shim_client;
pub mod shimtest;
pub mod skiffd;
pub mod unified;
pub mod volume;

/// Busybox bundles and temporary directories, shared with the drivers' tests.
pub use skiff_test_support::bundle;

/// Records that a test did not apply on this machine, and why. libtest cannot mark a
/// test skipped at run time, so the reason is printed and appended to
/// `target/skipped-tests.txt`, which `make test` shows at the end.
pub fn skip(test: &str, reason: &str) {
    let line = format!(
        "SKIPPED {test} [containerd {}{}]: {reason}\n",
        containerd::version_string(),
        machine_label()
    );
    eprint!("{line}");
    let path = containerd::workspace_dir().join("target/skipped-tests.txt");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        use std::io::Write;
        let _ = f.write_all(line.as_bytes());
    }
}

/// A figure a test measured, printed by `make test` at the end (from
/// `target/test-report.txt`) so it is seen even when the test passes.
pub fn report(line: &str) {
    let containerd = containerd::version_string();
    let line = format!("[containerd {containerd}{}] {line}", machine_label());
    eprintln!("{line}");
    let path = containerd::workspace_dir().join("target/test-report.txt");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        use std::io::Write;
        let _ = writeln!(f, "{line}");
    }
}

/// ", NAME" for the machine a run is on when it is not the host (`SKIFF_MACHINE`, set by
/// the cgroup v2 VM stage), and ", runc VERSION" when the run is given another runc than
/// the system's (`SKIFF_RUNC_BIN`), so its skips and figures say where they come from.
fn machine_label() -> String {
    let mut label = match std::env::var("SKIFF_MACHINE") {
        Ok(m) if !m.is_empty() => format!(", {m}"),
        _ => String::new(),
    };
    if runc::dir().is_some() {
        label.push_str(&format!(", runc {}", runc::version()));
    }
    label
}
