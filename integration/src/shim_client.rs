//! Driving a shim binary directly, as containerd does: run `start` in a bundle, connect
//! to the address it prints, and call the Task API over ttrpc.

use protobuf::well_known_types::any::Any;
use protobuf::Message;
use skiff_protos::shim_ttrpc::TaskClient;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

pub const TIMEOUT: Duration = Duration::from_secs(30);

/// A shim started by the test; killed (by its pid) on drop if still alive.
pub struct ShimProcess {
    pub address: String,
    pub pid: u32,
    pub client: TaskClient,
}

impl ShimProcess {
    /// Runs `SHIM -namespace NS -address CONTAINERD -id ID start` in `bundle`, as
    /// containerd would, with TTRPC_ADDRESS set to `events` (may be a dead address).
    pub fn start(
        shim: &Path,
        bundle: &Path,
        namespace: &str,
        id: &str,
        containerd_address: &str,
        events: &str,
    ) -> io::Result<ShimProcess> {
        let out = Command::new(shim)
            .args(["-namespace", namespace, "-address", containerd_address])
            .args(["-publish-binary", "/bin/false", "-id", id, "start"])
            .current_dir(bundle)
            .env("TTRPC_ADDRESS", events)
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "shim start failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let address = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let pid = std::fs::read_to_string(bundle.join("shim.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let client = ttrpc::Client::connect(&address)
            .map_err(|e| io::Error::other(format!("connecting to {address}: {e}")))?;
        Ok(ShimProcess {
            address,
            pid,
            client: TaskClient::new(client),
        })
    }

    pub fn ctx() -> ttrpc::context::Context {
        ttrpc::context::with_timeout(TIMEOUT.as_nanos() as i64)
    }
}

impl Drop for ShimProcess {
    fn drop(&mut self) {
        if self.pid > 0 && crate::proc::alive(self.pid) {
            // SAFETY: kill(2) on the shim this test started.
            unsafe {
                libc::kill(self.pid as i32, libc::SIGKILL);
            }
            // A shim killed cannot remove its socket: the test that killed it does.
            if let Some(path) = self.address.strip_prefix("unix://") {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// `containerd.runc.v1.Options` packed as containerd packs it.
pub fn runc_options(opts: &skiff_protos::options::Options) -> Any {
    Any {
        type_url: "containerd.runc.v1.Options".into(),
        value: opts.write_to_bytes().expect("encoding options"),
        ..Default::default()
    }
}

/// A shell script that appends its arguments to `log` and execs runc: proof of which
/// runtime binary a shim used.
pub fn recording_runtime(dir: &Path, log: &Path) -> io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("recording-runc");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nexec runc \"$@\"\n",
            log.display()
        ),
    )?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(path)
}
