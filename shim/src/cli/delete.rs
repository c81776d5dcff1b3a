//! `delete`: containerd runs the binary with `delete` when a shim is gone (killed,
//! crashed) or its start failed. It removes what the shim would have: the runtime's
//! container (killing what is left of it), the rootfs mount, a stale socket; and prints a
//! DeleteResponse saying the task was killed.

use crate::cli::address;
use crate::cli::flags::Flags;
use crate::events::timestamp;
use crate::options::driver::Driver;
use protobuf::{Message, MessageField};
use skiff_oci_runtime::DeleteOptions;
use skiff_protos::shim::DeleteResponse;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::SystemTime;

pub fn run(flags: &Flags, driver: &Driver) -> Result<Vec<u8>, String> {
    let bundle = if flags.bundle.is_empty() {
        std::env::current_dir().map_err(|e| format!("reading the bundle directory: {e}"))?
    } else {
        PathBuf::from(&flags.bundle)
    };
    crate::task::validate::id("container id", &flags.id)?;
    let settings = driver.saved_settings(&bundle, &flags.namespace);
    let runtime = driver.runtime(
        &settings,
        &bundle,
        std::sync::Arc::new(skiff_oci_runtime::DirectMonitor),
    );
    // A bundle without config.json (a sandbox's: containerd runs `delete` after every
    // sandbox shim's connection closes) never had a container made from it: no
    // runtime command to wait for.
    if bundle.join("config.json").exists() {
        match runtime.delete(&flags.id, &DeleteOptions { force: true }) {
            Ok(()) | Err(skiff_oci_runtime::Error::NotFound { .. }) => {}
            Err(e) => eprintln!("warning: {e}"),
        }
    }
    if let Err(e) = crate::sys::mount::unmount_all(&bundle.join("rootfs")) {
        eprintln!("warning: {e}");
    }
    // The address `start` wrote names the socket wherever it is (2.3's socket_dir too).
    let socket = match std::fs::read_to_string(bundle.join("address")) {
        Ok(addr) if !addr.trim().is_empty() => PathBuf::from(address::path_of(addr.trim())),
        _ => {
            let grouping = crate::cli::start::grouping_id(&bundle, &flags.id);
            address::socket_path(&flags.address, &flags.namespace, &grouping)
        }
    };
    if socket.exists() && UnixStream::connect(&socket).is_err() {
        let _ = std::fs::remove_file(&socket);
    }
    // A sandbox's bundle: its pod's files, /dev/shm and holder cgroup.
    crate::sandbox::cleanup::after_dead_shim(&bundle, &flags.id);
    let pid = std::fs::read_to_string(bundle.join("init.pid"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let resp = DeleteResponse {
        pid,
        exit_status: 128 + libc::SIGKILL as u32,
        exited_at: MessageField::some(timestamp(SystemTime::now())),
        ..Default::default()
    };
    resp.write_to_bytes()
        .map_err(|e| format!("encoding the DeleteResponse: {e}"))
}
