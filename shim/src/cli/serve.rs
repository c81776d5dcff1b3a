//! The serving shim: the process `start` launches. It serves the Task API on the socket
//! it inherited as fd 3 until containerd asks it to shut down with no container left.

use crate::cli::address;
use crate::cli::flags::Flags;
use crate::events::EventPublisher;
use crate::server::dispatch::TaskRpc;
use crate::server::event_loop::Sources;
use crate::stdio::Pumps;
use crate::sys::poller::Poller;
use crate::sys::reaper::Reaper;
use crate::task::{ShutdownSignal, TaskService};
use std::os::fd::FromRawFd;
use std::sync::Arc;
use std::time::Duration;

/// The listening socket's fd when `start` did not name one.
const DEFAULT_LISTENER_FD: i32 = 3;

pub fn run(flags: &Flags) -> Result<(), String> {
    Reaper::prepare_process().map_err(|e| format!("becoming a subreaper: {e}"))?;
    crate::sys::logging::init(flags.debug);

    let publisher = EventPublisher::start(std::env::var("TTRPC_ADDRESS").ok())
        .map_err(|e| format!("starting the event publisher: {e}"))?;
    let poller = Arc::new(Poller::new().map_err(|e| format!("creating the event loop: {e}"))?);
    let reaper = Reaper::new().map_err(|e| format!("starting the reaper: {e}"))?;
    let pumps = Arc::new(Pumps::new(poller.clone()));
    let shutdown = Arc::new(ShutdownSignal::default());
    let oom = crate::sys::oom::OomWatcher::start(flags.namespace.clone(), publisher.clone())
        .map_err(|e| format!("starting the OOM watcher: {e}"))?;
    let service = Arc::new(TaskService::new(
        flags.namespace.clone(),
        publisher.clone(),
        reaper.clone(),
        oom.clone(),
        pumps.clone(),
        shutdown.clone(),
    ));

    let listener = std::env::var(crate::cli::start::LISTEN_FD_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_LISTENER_FD);
    std::env::remove_var(crate::cli::start::LISTEN_FD_ENV);
    let socket_path = socket_path_of_listener(listener);
    // SAFETY: the listening socket `start` handed over; owned from here on.
    let listener = unsafe { std::os::unix::net::UnixListener::from_raw_fd(listener) };
    let mut server = crate::server::event_loop::Server::new(
        listener,
        task_services(service.clone()),
        service,
        Sources {
            poller,
            reaper,
            oom,
            pumps,
        },
    )
    .map_err(|e| format!("serving on the inherited socket: {e}"))?;
    log::info!(
        "serving on {}",
        socket_path.as_deref().unwrap_or("an unnamed socket")
    );
    // The Task API is served on this thread until a Shutdown is granted.
    server.run(&shutdown);
    if !publisher.flush(Duration::from_secs(3)) {
        log::error!("exiting with task events not yet delivered");
    }
    if let Some(path) = socket_path {
        let _ = std::fs::remove_file(address::path_of(&path));
    }
    drop(server);
    Ok(())
}

/// containerd.task.v3 (containerd 2.x) has the same messages as v2 for every RPC served
/// here, so the same handlers answer under both service names. (v3 adds an event
/// stream, which containerd uses only when a shim's bootstrap reply offers it.)
fn task_services(
    service: Arc<TaskService>,
) -> std::collections::HashMap<String, Box<dyn ttrpc::MethodHandler + Send + Sync>> {
    let rpc = Arc::new(TaskRpc(service));
    let mut methods = skiff_protos::shim_ttrpc::create_task(rpc.clone());
    let v3: Vec<_> = skiff_protos::shim_ttrpc::create_task(rpc)
        .into_iter()
        .map(|(name, handler)| {
            (
                name.replacen("/containerd.task.v2.Task/", "/containerd.task.v3.Task/", 1),
                handler,
            )
        })
        .collect();
    methods.extend(v3);
    methods
}

/// The path the inherited socket is bound to, for removing it at exit.
fn socket_path_of_listener(fd: i32) -> Option<String> {
    // SAFETY: getsockname into a sockaddr_un of the right size.
    unsafe {
        let mut addr: libc::sockaddr_un = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
        if libc::getsockname(fd, (&mut addr as *mut libc::sockaddr_un).cast(), &mut len) != 0 {
            return None;
        }
        let bytes: Vec<u8> = addr
            .sun_path
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        (!bytes.is_empty()).then(|| String::from_utf8_lossy(&bytes).into_owned())
    }
}
