//! The holder of a pod's shared PID namespace. A PID namespace lives as long as its
//! init, and its init must be a process of its own (the shim cannot move into one), so a
//! pod whose containers share a PID namespace costs one process: the shim binary run
//! again under the name [`ARGV0`], as init of the new namespace, in the pod's network,
//! IPC and UTS namespaces (it starts from the shim's main thread, which is in them). Its
//! pid is the sandbox's: the CRI points every container's namespaces at it.
//!
//! As init it reaps what is orphaned into the namespace, as a pause container does, and
//! ends on SIGTERM or SIGINT. It dies with the shim (parent-death signal): a pod's
//! processes never outlive the shim that serves them unseen.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The holder's argv[0]: how the binary knows it is to hold, not serve.
pub const ARGV0: &str = "skiff-pod-holder";

/// Whether this process was started as a holder.
pub fn invoked() -> bool {
    std::env::args_os().next().is_some_and(|a| a == ARGV0)
}

/// Starts the holder of sandbox `id`, from the main thread; returns its pid. It moves
/// itself into the cgroups whose `cgroup.procs` files are given before it runs: if it
/// cannot, it does not start.
pub fn spawn(id: &str, cgroup_procs: &[PathBuf]) -> io::Result<u32> {
    let procs: Vec<CString> = cgroup_procs
        .iter()
        .map(|p| CString::new(p.as_os_str().as_bytes()))
        .collect::<Result<_, _>>()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a cgroup path holds a NUL"))?;
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg0(ARGV0)
        .arg(id)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            for file in &procs {
                join_cgroup(file)?;
            }
            crate::sys::reaper::unblock_all_signals()
        });
    }
    let child = crate::sys::pod_ns::with_new_pid_namespace(|| cmd.spawn()).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("starting the pod's PID namespace holder: {e}"),
        )
    })?;
    // Reaped by the shim's reaper, like every child of the shim.
    Ok(child.id())
}

/// Writes "0" (the writing process) to a `cgroup.procs` file. Async-signal-safe: for
/// use between fork and exec.
fn join_cgroup(procs: &CString) -> io::Result<()> {
    // SAFETY: open/write/close on a NUL-terminated path with a static buffer.
    unsafe {
        let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let written = libc::write(fd, b"0".as_ptr().cast(), 1);
        let err = io::Error::last_os_error();
        libc::close(fd);
        if written != 1 {
            return Err(err);
        }
    }
    Ok(())
}

/// The holder's life: reap, until told to end.
pub fn run() -> std::process::ExitCode {
    use nix::sys::signal::{SigSet, Signal};
    // Its name in ps and /proc/PID/comm ("exe" otherwise, from /proc/self/exe).
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, c"skiff-holder".as_ptr(), 0, 0, 0);
    }
    let mut set = SigSet::empty();
    for sig in [Signal::SIGCHLD, Signal::SIGTERM, Signal::SIGINT] {
        set.add(sig);
    }
    // Blocked signals are queued even for a namespace's init, which ignores signals it
    // has no handler for: waiting for them is its handling.
    if set.thread_block().is_err() {
        return std::process::ExitCode::FAILURE;
    }
    loop {
        match set.wait() {
            Ok(Signal::SIGCHLD) => reap_all(),
            Ok(Signal::SIGTERM | Signal::SIGINT) => return std::process::ExitCode::SUCCESS,
            _ => {}
        }
    }
}

fn reap_all() {
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid out pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return;
        }
    }
}
