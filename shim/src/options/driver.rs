//! Who does the OCI runtime's work for this shim binary. `containerd-shim-skiff-v2` runs
//! a runtime binary (runc, crun) per operation; `containerd-shim-skiff-youki-v2` links
//! youki's libcontainer. The choice is the binary's, made once in its `main`, because
//! containerd picks a shim by runtime name and one shim serves a whole pod; `main` hands
//! it to the command line, which hands it to the Task service.

use super::RuntimeSettings;
use runc_driver::{GlobalOptions, Runtime};
use skiff_oci_runtime::{OciRuntime, ProcessMonitor};
use skiff_protos::options::Options;
use std::path::Path;
use std::sync::Arc;

/// Makes the runtime for a container with these settings and bundle; the monitor waits
/// for the processes a runtime spawns, so that the shim's reaper does not take their exits.
pub type MakeRuntime = fn(&RuntimeSettings, &Path, Arc<dyn ProcessMonitor>) -> Arc<dyn OciRuntime>;

pub struct Driver {
    /// The shim binary's name, for its messages and `-v`.
    pub binary: &'static str,
    /// The runtime name containerd resolves to this binary, for the log.
    pub runtime_name: &'static str,
    /// Where the runtime keeps container state unless the options give a Root (the
    /// namespace is appended, as containerd's shims do).
    pub default_root: &'static str,
    pub make_runtime: MakeRuntime,
}

/// runc (or the options' BinaryName), one command per operation.
pub const RUNC: Driver = Driver {
    binary: "containerd-shim-skiff-v2",
    runtime_name: "io.containerd.skiff.v2",
    default_root: "/run/containerd/runc",
    make_runtime: runc_runtime,
};

fn runc_runtime(
    settings: &RuntimeSettings,
    bundle: &Path,
    monitor: Arc<dyn ProcessMonitor>,
) -> Arc<dyn OciRuntime> {
    Arc::new(
        Runtime::new(
            &settings.binary,
            GlobalOptions {
                root: Some(settings.root.clone()),
                log: Some(bundle.join("log.json")),
                systemd_cgroup: settings.systemd_cgroup,
            },
        )
        .with_monitor(monitor),
    )
}

impl Driver {
    /// The settings of a container in `namespace` with these options.
    pub fn settings(&self, opts: &Options, namespace: &str) -> RuntimeSettings {
        RuntimeSettings::from_options(opts, namespace, Path::new(self.default_root))
    }

    /// The settings a bundle saved at Create, or the defaults.
    pub fn saved_settings(&self, bundle: &Path, namespace: &str) -> RuntimeSettings {
        RuntimeSettings::load(bundle, namespace, Path::new(self.default_root))
    }

    /// The runtime that drives a container with these settings; `monitor` waits for the
    /// processes it spawns.
    pub fn runtime(
        &self,
        settings: &RuntimeSettings,
        bundle: &Path,
        monitor: Arc<dyn ProcessMonitor>,
    ) -> Arc<dyn OciRuntime> {
        (self.make_runtime)(settings, bundle, monitor)
    }
}
