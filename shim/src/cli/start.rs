//! `start`: containerd runs the binary with `start` in the bundle directory; it must
//! print the address of a shim serving this container and exit. The serving shim is this
//! same binary, launched as a daemon with the listening socket already bound, so the
//! address is valid the moment it is printed.

use crate::cli::address;
use crate::cli::bootstrap::{self, StartInput};
use crate::cli::flags::Flags;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The environment variable naming the inherited listening socket's fd.
pub const LISTEN_FD_ENV: &str = "SKIFF_SHIM_LISTEN_FD";
/// The kernel's highest OOM score adjustment.
const OOM_SCORE_ADJ_MAX: i32 = 1000;

/// Starts (or finds) the serving shim; returns what to print: the address, in the form
/// the caller asked in ([`bootstrap`]).
pub fn run(flags: &Flags) -> Result<Vec<u8>, String> {
    let bundle =
        std::env::current_dir().map_err(|e| format!("reading the bundle directory: {e}"))?;
    crate::task::validate::id("container id", &flags.id)?;
    let input = bootstrap::parse(&read_stdin()?, flags)?;
    let options = crate::options::decode(input.options.as_ref()).map_err(|e| e.to_string())?;
    let grouping = grouping_id(&bundle, &flags.id);
    let dir = input
        .socket_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(address::SOCKET_DIR));
    let path = address::socket_path_in(&dir, &flags.address, &flags.namespace, &grouping);
    let addr = address::unix_address(&path);

    let listener = match bind(&path) {
        Ok(l) => l,
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            if UnixStream::connect(&path).is_ok() {
                // A live shim already serves this pod (or this container): use it.
                write_address(&bundle, &addr)?;
                return Ok(bootstrap::reply(input.reply, &addr));
            }
            let _ = fs::remove_file(&path);
            bind(&path).map_err(|e| format!("listening on {}: {e}", path.display()))?
        }
        Err(e) => return Err(format!("listening on {}: {e}", path.display())),
    };

    let pid = match spawn_server(flags, &input, &bundle, &listener) {
        Ok(pid) => pid,
        Err(e) => {
            let _ = fs::remove_file(&path);
            return Err(e);
        }
    };
    let _ = fs::write(bundle.join("shim.pid"), pid.to_string());
    if let Err(e) = settle_server(pid, &options, &bundle, &addr) {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        let _ = fs::remove_file(&path);
        return Err(e);
    }
    Ok(bootstrap::reply(input.reply, &addr))
}

/// What is done to the new server before containerd hears of it: its cgroup, its OOM
/// score, and the address file `delete` reads.
fn settle_server(
    pid: u32,
    options: &skiff_protos::options::Options,
    bundle: &Path,
    addr: &str,
) -> Result<(), String> {
    if !options.shim_cgroup.is_empty() {
        crate::sys::shim_cgroup::join(&options.shim_cgroup, pid)?;
    }
    adjust_oom_score(pid)?;
    write_address(bundle, addr)
}

/// The shim's OOM score is its manager's plus one, as containerd's shims set it: under
/// memory pressure the kernel then kills a shim before the containerd that manages it.
/// Raising a score needs no privilege.
fn adjust_oom_score(pid: u32) -> Result<(), String> {
    let parent = nix::unistd::getppid();
    let path = format!("/proc/{parent}/oom_score_adj");
    let text = fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))?;
    let score: i32 = text
        .trim()
        .parse()
        .map_err(|_| format!("{path} holds {text:?}, not a score"))?;
    let own = format!("/proc/{pid}/oom_score_adj");
    fs::write(&own, (score + 1).min(OOM_SCORE_ADJ_MAX).to_string())
        .map_err(|e| format!("setting the shim's OOM score in {own}: {e}"))
}

/// What containerd wrote on stdin (nothing when it is a terminal), at most
/// [`bootstrap::MAX_INPUT`] bytes.
fn read_stdin() -> Result<Vec<u8>, String> {
    use std::io::Read;
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Ok(Vec::new());
    }
    let mut data = Vec::new();
    let limit = bootstrap::MAX_INPUT as u64 + 1;
    if std::io::stdin().take(limit).read_to_end(&mut data).is_err() {
        return Ok(Vec::new());
    }
    if data.len() > bootstrap::MAX_INPUT {
        return Err(format!(
            "more than {} bytes on stdin: not what containerd writes",
            bootstrap::MAX_INPUT
        ));
    }
    Ok(data)
}

/// The id whose shim serves this container: its pod's sandbox id when it has one.
pub fn grouping_id(bundle: &Path, id: &str) -> String {
    match crate::task::bundle::sandbox_id(bundle) {
        Some(sandbox) if crate::task::validate::id("sandbox id", &sandbox).is_ok() => sandbox,
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
    // The socket is born private: with the umask at 0177 it never exists, even for a
    // moment, with looser permissions than 0600. (`start` runs no other thread.)
    use nix::sys::stat::{umask, Mode};
    let old = umask(Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(path);
    umask(old);
    let listener = bound?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

fn spawn_server(
    flags: &Flags,
    input: &StartInput,
    bundle: &Path,
    listener: &UnixListener,
) -> Result<u32, String> {
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
    if flags.debug || input.debug {
        cmd.arg("-debug");
    }
    if let Some(events) = &input.ttrpc_address {
        cmd.env("TTRPC_ADDRESS", events);
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
