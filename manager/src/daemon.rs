//! `skiffd`: opens the store under --root, recovers from a crash, serves skiff.v1 on
//! --address (a unix socket private to root) until SIGTERM or SIGINT.

use crate::store::Store;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const DEFAULT_ROOT: &str = "/var/lib/skiff";
pub const DEFAULT_STATE: &str = "/run/skiff";
pub const DEFAULT_ADDRESS: &str = "/run/skiff/skiffd.sock";

const USAGE: &str = "usage: skiffd [--root DIR] [--state DIR] [--address SOCK] [--log-level error|warn|info|debug] [--native-snapshots]
              [--cgroup-parent PATH]

  --root      metadata, content and snapshots (default /var/lib/skiff)
  --state     runtime state (default /run/skiff)
  --address   the API socket (default /run/skiff/skiffd.sock)
  --native-snapshots  copy trees instead of using overlayfs
  --cgroup-parent     containers' cgroups go under PARENT/NAMESPACE/ID (default /skiff)";

struct Args {
    root: PathBuf,
    state: PathBuf,
    address: PathBuf,
    native: bool,
    cgroup_parent: String,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut a = Args {
        root: DEFAULT_ROOT.into(),
        state: DEFAULT_STATE.into(),
        address: DEFAULT_ADDRESS.into(),
        native: false,
        cgroup_parent: "/skiff".into(),
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--root" => a.root = value()?.into(),
            "--state" => a.state = value()?.into(),
            "--address" => a.address = value()?.into(),
            "--log-level" => crate::log::set_level(&value()?)?,
            "--native-snapshots" => a.native = true,
            "--cgroup-parent" => {
                let v = value()?;
                if !v.starts_with('/') || v.split('/').any(|p| p == "..") {
                    return Err(format!(
                        "--cgroup-parent {v:?} must be an absolute cgroup path without '..'"
                    ));
                }
                a.cgroup_parent = v.trim_end_matches('/').to_string();
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(a)
}

fn private_dir(dir: &Path) -> Result<(), String> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("creating {}: {e}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("securing {}: {e}", dir.display()))
}

pub fn main() -> i32 {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return 0;
    }
    match parse(&argv).and_then(|a| run(&a)) {
        Ok(()) => 0,
        Err(e) => {
            crate::log::error(&e);
            1
        }
    }
}

fn run(a: &Args) -> Result<(), String> {
    // Signals are taken by sigwait below; every thread started later inherits the mask.
    // SAFETY: plain signal-mask calls on a local set.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        libc::umask(0o077);
        set
    };
    private_dir(&a.root)?;
    private_dir(&a.state)?;
    let lock =
        std::fs::File::create(a.root.join("skiffd.lock")).map_err(|e| format!("lock file: {e}"))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(format!("another skiffd is using {}", a.root.display()));
    }
    let mut store = Store::open(&a.root, a.native).map_err(|e| e.to_string())?;
    store.cgroup_parent = a.cgroup_parent.clone();
    let store = Arc::new(store);
    for line in store
        .recover()
        .map_err(|e| format!("recovering the store: {e}"))?
    {
        crate::log::info(&format!("recovery: {line}"));
    }
    if let Some(parent) = a.address.parent() {
        private_dir(parent)?;
    }
    let events_address = a.state.join("events.sock");
    let tasks = Arc::new(crate::tasks::Tasks::new(
        store.clone(),
        crate::shim::Launcher {
            address: a.address.clone(),
            events_address: events_address.clone(),
        },
        &a.state,
        Arc::new(crate::events::EventLog::default()),
    ));
    // Shims deliver events here; it listens before tasks are recovered, so events a
    // shim held while skiffd was down arrive.
    let mut events_server = serve(&events_address, crate::events::service(tasks.clone()))?;
    for line in tasks.recover() {
        crate::log::info(&format!("recovery: {line}"));
    }
    let mut server = serve(&a.address, crate::service::services(store.clone(), tasks))?;
    server.start().map_err(|e| format!("serving: {e}"))?;
    events_server
        .start()
        .map_err(|e| format!("serving events: {e}"))?;
    crate::log::info(&format!(
        "skiffd serving on {} (root {}, {} snapshots)",
        a.address.display(),
        a.root.display(),
        store.snapshots.driver.name()
    ));
    let mut sig: libc::c_int = 0;
    // SAFETY: waits for one of the blocked signals.
    unsafe { libc::sigwait(&set, &mut sig) };
    crate::log::info(&format!("signal {sig}: shutting down"));
    server.shutdown();
    events_server.shutdown();
    let _ = std::fs::remove_file(&a.address);
    let _ = std::fs::remove_file(&events_address);
    Ok(())
}

/// A ttrpc server on a unix socket private to root (a stale socket is replaced).
fn serve(
    path: &Path,
    services: std::collections::HashMap<String, Box<dyn ttrpc::MethodHandler + Send + Sync>>,
) -> Result<ttrpc::Server, String> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(format!("{} is in use by another server", path.display()));
        }
        let _ = std::fs::remove_file(path);
    }
    // Waits block a worker each for as long as a container runs.
    let server = ttrpc::Server::new()
        .set_thread_count_min(2)
        .set_thread_count_default(4)
        .set_thread_count_max(256)
        .bind(&format!("unix://{}", path.display()))
        .map_err(|e| format!("listening on {}: {e}", path.display()))?
        .register_service(services);
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("securing {}: {e}", path.display()))?;
    Ok(server)
}
