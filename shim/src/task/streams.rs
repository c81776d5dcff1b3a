//! How a process gets its streams when the runtime starts it: pipes the shim holds (the
//! runtime hands their other ends to the process), or a pty whose master the runtime
//! sends back over a console socket. Either way the shim ends up with a [`ProcessIo`].

use crate::stdio::{Owner, ProcessIo, Pumps, StreamPaths};
use crate::task::error::{Result, ShimError};
use skiff_oci_runtime::{ConsoleSocket, Stdio3};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How long the runtime has to send a pty master once its command returned.
const CONSOLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `start` (a runtime command that starts a process) with the process's ends of its
/// streams, and the console socket for a terminal one; returns its result and the
/// shim's side of the streams. `what` names the process in errors.
pub fn start_with_streams<T>(
    paths: StreamPaths,
    owner: &Owner,
    pumps: &Arc<Pumps>,
    what: &str,
    start: impl FnOnce(Stdio3, Option<&Path>) -> Result<T>,
) -> Result<(T, ProcessIo)> {
    if !paths.terminal {
        let (io, stdio) = ProcessIo::pipes(paths, owner, pumps)
            .map_err(|e| ShimError::internal(format!("setting up the stdio of {what}"), e))?;
        return Ok((start(stdio, None)?, io));
    }
    let console = ConsoleSocket::new(None)
        .map_err(|e| ShimError::internal("creating the console socket", e))?;
    let started = start(Stdio3::default(), Some(console.path()))?;
    let io = console
        .receive_master(CONSOLE_TIMEOUT)
        .and_then(|master| ProcessIo::terminal(paths, master, pumps))
        .map_err(|e| ShimError::internal(format!("setting up the terminal of {what}"), e))?;
    Ok((started, io))
}

/// Reads the pid file a runtime command wrote.
pub fn read_pid(path: &Path) -> Result<u32> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ShimError::internal(format!("reading {}", path.display()), e))?;
    text.trim()
        .parse()
        .map_err(|_| ShimError::Internal(format!("{} holds {text:?}, not a pid", path.display())))
}
