//! containerd-shim-skiff-youki-v2 (`io.containerd.skiff-youki.v2`): the skiff shim with
//! the OCI runtime's work done in-process by youki's libcontainer instead of a runc
//! command per operation. Everything else (the Task API, stdio, the reaper, events) is
//! the same shim.

use skiff_oci_runtime::{OciRuntime, ProcessMonitor};
use skiff_shim::options::driver::Driver;
use skiff_shim::options::RuntimeSettings;
use std::path::Path;
use std::sync::Arc;

static LIBCONTAINER: Driver = Driver {
    binary: "containerd-shim-skiff-youki-v2",
    runtime_name: "io.containerd.skiff-youki.v2",
    default_root: "/run/containerd/youki",
    make_runtime: libcontainer_runtime,
};

/// The options' Root and SystemdCgroup apply; a BinaryName other than runc's default is
/// refused at Create with the reason (no runtime binary runs here).
fn libcontainer_runtime(
    settings: &RuntimeSettings,
    _bundle: &Path,
    monitor: Arc<dyn ProcessMonitor>,
) -> Arc<dyn OciRuntime> {
    let mut runtime = youki_driver::Libcontainer::new(settings.root.clone())
        .with_monitor(monitor)
        .with_systemd(settings.systemd_cgroup);
    if settings.binary != skiff_shim::options::DEFAULT_RUNTIME_BINARY {
        runtime = runtime.refusing(format!(
            "BinaryName {:?}: this shim runs no runtime binary, libcontainer works in-process \
             (use io.containerd.skiff.v2 to run another runtime)",
            settings.binary
        ));
    }
    Arc::new(runtime)
}

fn main() -> std::process::ExitCode {
    skiff_shim::cli::main(&LIBCONTAINER)
}
