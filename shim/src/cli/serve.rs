//! The serving shim: the process `start` launches. It serves the Task API on the socket
//! it inherited until containerd asks it to shut down with no container left.

use crate::cli::address;
use crate::cli::flags::Flags;
use crate::events::EventPublisher;
use crate::options::driver::Driver;
use crate::server::event_loop::{Server, Sources};
use crate::stdio::Pumps;
use crate::sys::oom::OomWatcher;
use crate::sys::poller::Poller;
use crate::sys::reaper::Reaper;
use crate::task::{Parts, TaskService};
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::sync::Arc;
use std::time::Duration;

/// The listening socket's fd when `start` did not name one.
const DEFAULT_LISTENER_FD: RawFd = 3;

pub fn run(flags: &Flags, driver: &'static Driver) -> Result<(), String> {
    crate::sys::memory::one_arena();
    Reaper::prepare_process().map_err(|e| format!("becoming a subreaper: {e}"))?;
    crate::sys::logging::init(flags.debug, driver.runtime_name);
    let listener = inherited_listener()?;
    let socket_path = listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(|p| p.to_path_buf()));

    let publisher = EventPublisher::start(std::env::var("TTRPC_ADDRESS").ok())
        .map_err(|e| format!("starting the event publisher: {e}"))?;
    let poller = Arc::new(Poller::new().map_err(|e| format!("creating the event loop: {e}"))?);
    let sources = Sources {
        pumps: Arc::new(Pumps::new(poller.clone())),
        poller,
        reaper: Reaper::new().map_err(|e| format!("starting the reaper: {e}"))?,
        oom: OomWatcher::start().map_err(|e| format!("starting the OOM watcher: {e}"))?,
    };
    let service = Arc::new(TaskService::new(Parts {
        namespace: flags.namespace.clone(),
        driver,
        publisher: publisher.clone(),
        reaper: sources.reaper.clone(),
        oom: sources.oom.clone(),
        pumps: sources.pumps.clone(),
    }));
    let mut server = Server::new(listener, service, sources)
        .map_err(|e| format!("serving on the inherited socket: {e}"))?;
    log::info!("serving on {:?}", socket_path);
    // The Task API is served on this thread until a Shutdown is granted.
    server.run();
    if !publisher.flush(Duration::from_secs(3)) {
        log::error!("exiting with task events not yet delivered");
    }
    if let Some(path) = socket_path {
        let _ = std::fs::remove_file(address::path_of(&path.to_string_lossy()));
    }
    Ok(())
}

/// The listening socket `start` bound and handed over (its fd in the environment), made
/// close-on-exec again so that no runtime, hook or container inherits it.
fn inherited_listener() -> Result<UnixListener, String> {
    let fd = std::env::var(crate::cli::start::LISTEN_FD_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_LISTENER_FD);
    std::env::remove_var(crate::cli::start::LISTEN_FD_ENV);
    // SAFETY: the fd `start` bound and passed on exec for this process alone; owned from
    // here on.
    let listener = unsafe { UnixListener::from_raw_fd(fd) };
    fcntl(&listener, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
        .map_err(|e| format!("the inherited socket (fd {fd}): {e}"))?;
    Ok(listener)
}
