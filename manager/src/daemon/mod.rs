//! `skiffd`: opens the store under --root, recovers from a crash, serves skiff.v1 on
//! --address (a unix socket private to root) until SIGTERM or SIGINT.

mod args;
mod dirs;

pub use args::{Args, DEFAULT_ADDRESS, DEFAULT_ROOT, DEFAULT_STATE};
use clap::Parser;
use dirs::private_dir;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

pub fn main() -> i32 {
    let args = Args::parse();
    if let Err(e) = crate::log::set_level(&args.log_level) {
        crate::log::error(&e);
        return 2;
    }
    match run(&args) {
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
    raise_open_files();
    let lock =
        std::fs::File::create(a.root.join("skiffd.lock")).map_err(|e| format!("lock file: {e}"))?;
    let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|_| format!("another skiffd is using {}", a.root.display()))?;
    let mut store =
        crate::store::Store::open(&a.root, a.native_snapshots).map_err(|e| e.to_string())?;
    store.cgroup_parent = a.cgroup_parent.clone();
    store.limits = a.limits.limits();
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
        Arc::new(crate::event_log::EventLog::default()),
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

/// Unpacking holds a descriptor per directory level and per directory whose times are
/// pending: the soft limit goes up to the hard one, as containerd does.
fn raise_open_files() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
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
