//! The pod's namespaces, held by the serving shim itself when it serves a sandbox: its
//! main thread joins the pod's network namespace and makes the pod's IPC and UTS ones,
//! so `/proc/<shim pid>/ns/{net,ipc,uts}` (which name the thread-group leader's) are the
//! pod's and no process is needed to pin them.
//!
//! Namespaces are per thread. A thread inherits its creator's at clone time, so every
//! thread the loop starts later (runtime commands, their hooks, logging binaries) would
//! run in the pod's: [`on_new_thread`] puts such a thread back into the shim's own
//! namespaces first, as it would be with a pause container. The shim's own namespaces
//! are opened once, the first time the pod's are entered, and kept for the life of the
//! process.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::sync::OnceLock;

/// Which of the pod's namespaces the main thread is in.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PodNamespaces {
    /// Joined the pod's network namespace (a path the CRI made).
    pub net: bool,
    /// Made a new IPC namespace.
    pub ipc: bool,
    /// Made a new UTS namespace.
    pub uts: bool,
}

/// The shim's own namespaces, to come back to.
struct Own {
    net: File,
    ipc: File,
    uts: File,
    pid: File,
}

static OWN: OnceLock<Own> = OnceLock::new();

fn own() -> io::Result<&'static Own> {
    if let Some(own) = OWN.get() {
        return Ok(own);
    }
    let open = |ns: &str| {
        let path = format!("/proc/thread-self/ns/{ns}");
        File::open(&path).map_err(|e| io::Error::new(e.kind(), format!("opening {path}: {e}")))
    };
    let opened = Own {
        net: open("net")?,
        ipc: open("ipc")?,
        uts: open("uts")?,
        pid: open("pid")?,
    };
    Ok(OWN.get_or_init(|| opened))
}

/// Moves the calling thread (the main one: its namespaces are the process's) into the
/// pod's: joins `netns` when given, makes new IPC and UTS namespaces when asked. On an
/// error the thread is back in the shim's own namespaces.
pub fn enter(netns: Option<&Path>, ipc: bool, uts: bool) -> io::Result<PodNamespaces> {
    own()?;
    let mut entered = PodNamespaces::default();
    let result = (|| {
        if let Some(path) = netns {
            let ns = File::open(path).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("opening the pod's netns {}: {e}", path.display()),
                )
            })?;
            set(ns.as_raw_fd(), libc::CLONE_NEWNET).map_err(|e| {
                io::Error::new(e.kind(), format!("joining {}: {e}", path.display()))
            })?;
            entered.net = true;
        }
        let mut flags = 0;
        if ipc {
            flags |= libc::CLONE_NEWIPC;
        }
        if uts {
            flags |= libc::CLONE_NEWUTS;
        }
        if flags != 0 {
            // SAFETY: unshare(2) with namespace flags only: it changes this thread's
            // namespaces, nothing in memory.
            if unsafe { libc::unshare(flags) } != 0 {
                let e = io::Error::last_os_error();
                return Err(io::Error::new(
                    e.kind(),
                    format!("making the pod's IPC/UTS namespaces: {e}"),
                ));
            }
            entered.ipc = ipc;
            entered.uts = uts;
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok(entered),
        Err(e) => {
            let _ = leave(entered);
            Err(e)
        }
    }
}

/// Moves the calling thread back into the shim's own namespaces: the pod's are freed
/// when nothing else is in them.
pub fn leave(entered: PodNamespaces) -> io::Result<()> {
    let own = own()?;
    for (on, fd, kind) in [
        (entered.net, &own.net, libc::CLONE_NEWNET),
        (entered.ipc, &own.ipc, libc::CLONE_NEWIPC),
        (entered.uts, &own.uts, libc::CLONE_NEWUTS),
    ] {
        if on {
            set(fd.as_raw_fd(), kind)?;
        }
    }
    Ok(())
}

/// For a thread the loop starts: back into the shim's own network, IPC and UTS
/// namespaces if the main thread ever entered a pod's (a no-op otherwise).
pub fn on_new_thread() {
    let Some(own) = OWN.get() else {
        return;
    };
    for (fd, kind) in [
        (&own.net, libc::CLONE_NEWNET),
        (&own.ipc, libc::CLONE_NEWIPC),
        (&own.uts, libc::CLONE_NEWUTS),
    ] {
        if let Err(e) = set(fd.as_raw_fd(), kind) {
            log::warn!("a runtime thread stays in the pod's namespaces: {e}");
        }
    }
}

/// Runs `spawn` with the calling thread's children going into a new PID namespace: the
/// first process it starts is that namespace's init. The thread's own PID namespace never
/// changes; its children's is set back before returning.
pub fn with_new_pid_namespace<T>(spawn: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    let own = own()?;
    // SAFETY: unshare(2) with CLONE_NEWPID changes only where this thread's next
    // children go.
    if unsafe { libc::unshare(libc::CLONE_NEWPID) } != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("making the pod's PID namespace: {e}"),
        ));
    }
    let spawned = spawn();
    if let Err(e) = set(own.pid.as_raw_fd(), libc::CLONE_NEWPID) {
        // Children of this thread would keep going into the pod's PID namespace.
        log::error!("restoring the shim's PID namespace for its children: {e}");
    }
    spawned
}

fn set(fd: RawFd, kind: libc::c_int) -> io::Result<()> {
    // SAFETY: setns(2) on an fd this module holds open, for one namespace type.
    if unsafe { libc::setns(fd, kind) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(kind: &str) -> String {
        std::fs::read_link(format!("/proc/thread-self/ns/{kind}"))
            .map(|l| l.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// A thread in the pod's namespaces starts threads there; those that call
    /// `on_new_thread` are back in the shim's own, and so is the thread once it leaves.
    #[test]
    fn threads_started_in_the_pods_namespaces_come_back() {
        let host = (ns("ipc"), ns("uts"));
        std::thread::spawn(move || {
            let entered = enter(None, true, true).expect("unshare IPC and UTS (as root)");
            let pod = (ns("ipc"), ns("uts"));
            assert_ne!(pod.0, host.0);
            assert_ne!(pod.1, host.1);
            let inherited = std::thread::spawn(|| (ns("ipc"), ns("uts")))
                .join()
                .unwrap();
            assert_eq!(
                inherited, pod,
                "a new thread starts in its creator's namespaces"
            );
            let reset = std::thread::spawn(|| {
                on_new_thread();
                (ns("ipc"), ns("uts"))
            })
            .join()
            .unwrap();
            assert_eq!(reset, host);
            leave(entered).unwrap();
            assert_eq!((ns("ipc"), ns("uts")), host);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_path_that_is_no_network_namespace_is_refused_and_nothing_changes() {
        let host = ns("ipc");
        std::thread::spawn(move || {
            let err = enter(Some(Path::new("/proc/self/cmdline")), true, false).unwrap_err();
            assert!(
                err.to_string().contains("joining /proc/self/cmdline"),
                "{err}"
            );
            assert_eq!(ns("ipc"), host, "no IPC namespace was made");
        })
        .join()
        .unwrap();
    }
}
