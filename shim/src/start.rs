//! `start`: containerd runs the binary with `start` in the bundle directory; it must
//! print the address of a shim serving this container and exit. The serving shim is this
//! same binary, launched as a daemon with the listening socket already bound, so the
//! address is valid the moment it is printed.

use crate::address;
use crate::cli::Flags;
use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// The environment variable naming the inherited listening socket's fd.
pub const LISTEN_FD_ENV: &str = "SKIFF_SHIM_LISTEN_FD";
/// The annotation that puts the containers of one Kubernetes pod under one shim.
pub const SANDBOX_ANNOTATION: &str = "io.kubernetes.cri.sandbox-id";

pub fn run(flags: &Flags) -> Result<String, String> {
    let bundle =
        std::env::current_dir().map_err(|e| format!("reading the bundle directory: {e}"))?;
    crate::validate::id("container id", &flags.id)?;
    let grouping = grouping_id(&bundle, &flags.id);
    let path = address::socket_path(&flags.address, &flags.namespace, &grouping);
    let addr = address::unix_address(&path);

    let listener = match bind(&path) {
        Ok(l) => l,
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            if UnixStream::connect(&path).is_ok() {
                // A live shim already serves this pod (or this container): use it.
                write_address(&bundle, &addr)?;
                return Ok(addr);
            }
            let _ = fs::remove_file(&path);
            bind(&path).map_err(|e| format!("listening on {}: {e}", path.display()))?
        }
        Err(e) => return Err(format!("listening on {}: {e}", path.display())),
    };

    let options = read_options_from_stdin()?;
    let pid = match spawn_server(flags, &bundle, &listener) {
        Ok(pid) => pid,
        Err(e) => {
            let _ = fs::remove_file(&path);
            return Err(e);
        }
    };
    let _ = fs::write(bundle.join("shim.pid"), pid.to_string());
    if !options.shim_cgroup.is_empty() {
        if let Err(e) = crate::shim_cgroup::join(&options.shim_cgroup, pid) {
            // SAFETY: kill(2) on the server we just started.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
            let _ = fs::remove_file(&path);
            return Err(e);
        }
    }
    if let Err(e) = write_address(&bundle, &addr) {
        let _ = fs::remove_file(&path);
        return Err(e);
    }
    Ok(addr)
}

/// containerd writes the runtime options (an Any) to `start`'s stdin.
fn read_options_from_stdin() -> Result<skiff_protos::options::Options, String> {
    use protobuf::Message;
    use std::io::Read;
    // SAFETY: isatty on fd 0.
    if unsafe { libc::isatty(0) } == 1 {
        return Ok(Default::default());
    }
    let mut data = Vec::new();
    if std::io::stdin().read_to_end(&mut data).is_err() || data.is_empty() {
        return Ok(Default::default());
    }
    let any = protobuf::well_known_types::any::Any::parse_from_bytes(&data)
        .map_err(|e| format!("reading the runtime options on stdin: {e}"))?;
    crate::options::decode(Some(&any)).map_err(|e| e.to_string())
}

/// The id whose shim serves this container: its pod's sandbox id when it has one.
pub fn grouping_id(bundle: &Path, id: &str) -> String {
    let Ok(text) = fs::read(bundle.join("config.json")) else {
        return id.to_string();
    };
    let Ok(spec) = serde_json::from_slice::<serde_json::Value>(&text) else {
        return id.to_string();
    };
    match spec["annotations"][SANDBOX_ANNOTATION].as_str() {
        Some(sandbox) if crate::validate::id("sandbox id", sandbox).is_ok() => sandbox.to_string(),
        _ => id.to_string(),
    }
}

fn bind(path: &Path) -> io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let listener = UnixListener::bind(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

fn spawn_server(flags: &Flags, bundle: &Path, listener: &UnixListener) -> Result<u32, String> {
    let exe = std::env::current_exe().map_err(|e| format!("finding the shim binary: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.args([
        "-namespace",
        &flags.namespace,
        "-id",
        &flags.id,
        "-address",
        &flags.address,
    ]);
    if !flags.publish_binary.is_empty() {
        cmd.args(["-publish-binary", &flags.publish_binary]);
    }
    if flags.debug {
        cmd.arg("-debug");
    }
    let fd = listener.as_raw_fd();
    cmd.current_dir(bundle)
        .env(LISTEN_FD_ENV, fd.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // Its own session: signals to containerd's process group do not reach it.
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            // Keep the listening socket across exec.
            if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("launching the serving shim: {e}"))?;
    Ok(child.id())
}

fn write_address(bundle: &Path, addr: &str) -> Result<(), String> {
    fs::write(bundle.join("address"), addr)
        .map_err(|e| format!("writing {}: {e}", bundle.join("address").display()))
}
