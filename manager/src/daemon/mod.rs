//! `skiffd`: opens the store under --root, recovers from a crash, serves skiff.v1 on
//! --address (a unix socket private to root) until SIGTERM or SIGINT.

mod args;
mod dirs;

use crate::store::Store;
use crate::tasks::Tasks;
pub use args::{Args, DEFAULT_ADDRESS, DEFAULT_ROOT, DEFAULT_STATE};
use clap::Parser;
use dirs::private_dir;
use signal_hook::consts::{SIGINT, SIGTERM};
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
    // Before any thread starts: SIGTERM and SIGINT go to this iterator (signal-hook's
    // handler writes them to a pipe it reads), so no thread is ever killed by them.
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
        .map_err(|e| format!("handling signals: {e}"))?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    private_dir(&a.root)?;
    private_dir(&a.state)?;
    // Resolved once (symlinks too): the FIFO paths clients get must not pass a symlink.
    let mut a = a.clone();
    a.state = std::fs::canonicalize(&a.state).map_err(|e| format!("--state: {e}"))?;
    let a = &a;
    // Clients make their FIFOs here; a FIFO directory anyone could change would let
    // them swap a FIFO for a symlink before a shim opens it as root.
    crate::secure_dir::make_private(&a.state, crate::tasks::FIFO_DIR)
        .map_err(|e| format!("the FIFO directory: {e}"))?;
    remove_dead_clients_fifos(&a.state.join(crate::tasks::FIFO_DIR));
    raise_open_files();
    let lock =
        std::fs::File::create(a.root.join("skiffd.lock")).map_err(|e| format!("lock file: {e}"))?;
    let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|_| format!("another skiffd is using {}", a.root.display()))?;
    let store = open_store(a)?;
    if let Some(parent) = a.address.parent() {
        private_dir(parent)?;
    }
    let (server, events_server) = start_serving(a, &store)?;
    if let Some(m) = &a.metrics_address {
        let bound = crate::metrics::server::start(m, store.clone())?;
        crate::log::info(&format!("metrics on {bound}"));
    }
    crate::log::info(&format!(
        "skiffd serving on {} (root {}, {} snapshots)",
        a.address.display(),
        a.root.display(),
        store.snapshots.driver.name()
    ));
    let sig = signals.forever().next().unwrap_or(SIGTERM);
    crate::log::info(&format!("signal {sig}: shutting down"));
    server.shutdown();
    events_server.shutdown();
    let _ = std::fs::remove_file(&a.address);
    let _ = std::fs::remove_file(a.state.join(EVENTS_SOCKET));
    Ok(())
}

/// FIFO directories of CLIs that are gone (killed before they removed theirs): each is
/// named `NAME-PID` by the CLI that made it.
fn remove_dead_clients_fifos(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = name.rsplit('-').next().and_then(|p| p.parse::<i32>().ok());
        let alive = pid
            .is_some_and(|p| nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None).is_ok());
        if !alive {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Where shims deliver events (their TTRPC_ADDRESS), in the state directory.
const EVENTS_SOCKET: &str = "events.sock";

fn open_store(a: &Args) -> Result<Arc<Store>, String> {
    let mut store = Store::open(&a.root, a.native_snapshots).map_err(|e| e.to_string())?;
    store.cgroup_parent = a.cgroup_parent.clone();
    store.limits = a.limits.limits();
    store.registry_config = a.registry_config.clone();
    for line in store
        .recover()
        .map_err(|e| format!("recovering the store: {e}"))?
    {
        crate::log::info(&format!("recovery: {line}"));
    }
    Ok(Arc::new(store))
}

/// The events endpoint, the tasks recovered, then the API: (API server, events server).
fn start_serving(a: &Args, store: &Arc<Store>) -> Result<(ttrpc::Server, ttrpc::Server), String> {
    let events_address = a.state.join(EVENTS_SOCKET);
    let launcher = crate::shim::Launcher {
        address: a.address.clone(),
        events_address: events_address.clone(),
    };
    let events = Arc::new(crate::event_log::EventLog::default());
    let logs = crate::tasks::LogConfig {
        dir: a.root.join("logs"),
        max_size: a.max_log_size,
    };
    let tasks = Arc::new(Tasks::new(store.clone(), launcher, &a.state, events, logs));
    // It listens before tasks are recovered, so events a shim held while skiffd was
    // down arrive.
    let mut events_server = serve(&events_address, crate::events::service(tasks.clone()))?;
    for line in tasks.recover() {
        crate::log::info(&format!("recovery: {line}"));
    }
    let mut server = serve(&a.address, crate::service::services(store.clone(), tasks))?;
    server.start().map_err(|e| format!("serving: {e}"))?;
    events_server
        .start()
        .map_err(|e| format!("serving events: {e}"))?;
    Ok((server, events_server))
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
    let listener = bind_private(path)?;
    // Waits block a worker each for as long as a container runs.
    let server = ttrpc::Server::new()
        .set_thread_count_min(2)
        .set_thread_count_default(4)
        .set_thread_count_max(256)
        .add_listener(std::os::fd::IntoRawFd::into_raw_fd(listener))
        .map_err(|e| format!("listening on {}: {e}", path.display()))?
        .register_service(services);
    Ok(server)
}

/// A listening socket that appears at `path` already 0600: it is bound under a
/// neighbouring name, secured, then renamed into place, so no client ever sees it
/// with the umask's mode. (The umask is the process's and threads run by now, so it
/// is not changed here.)
fn bind_private(path: &Path) -> Result<std::os::unix::net::UnixListener, String> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let staging = path.with_file_name(format!(".{name}.{}", std::process::id()));
    let _ = std::fs::remove_file(&staging);
    let listener = std::os::unix::net::UnixListener::bind(&staging)
        .map_err(|e| format!("listening on {}: {e}", path.display()))?;
    let placed = std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&staging, path));
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&staging);
        return Err(format!("securing {}: {e}", path.display()));
    }
    Ok(listener)
}
