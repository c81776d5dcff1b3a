//! Kill: a signal for a container's init through the runtime (with `all`, for every
//! process of the container), or for an exec straight to its process. It never waits
//! behind another command of the container: it is how a user ends a hung one. The one
//! exception is an exec being started, which has no process yet: its Kill waits for the
//! Start in the container's turn, then reaches the process the Start made (CRI kills an
//! exec whose client went away during a slow start, and must not leave it running).

use crate::task::container::Container;
use crate::task::error::{Result, ShimError};
use crate::task::job::{later, Order, Reply};
use crate::task::TaskService;
use protobuf::well_known_types::empty::Empty;
use skiff_oci_runtime::{Error as RuntimeError, KillOptions};
use skiff_protos::shim::KillRequest;

impl TaskService {
    pub fn kill(&self, req: KillRequest) -> Reply<Empty> {
        let c = match self.container(&req.id) {
            Ok(c) => c,
            Err(e) => return Reply::Now(Err(e)),
        };
        if !req.exec_id.is_empty() {
            return match c.with(&req.exec_id, |p| Ok(p.is_starting())) {
                Ok(true) => later(
                    Order::InTurn(c.id().to_string()),
                    || (),
                    move |_, ()| signal_exec(&c, &req.exec_id, req.signal),
                ),
                Ok(false) => signal_exec(&c, &req.exec_id, req.signal).into(),
                Err(e) => Reply::Now(Err(e)),
            };
        }
        if let Err(e) = c.with_init(|p| p.check_signalable()) {
            return Reply::Now(Err(e));
        }
        let runtime = c.runtime().clone();
        let work = move || {
            runtime
                .kill(&req.id, req.signal, &KillOptions { all: req.all })
                .map_err(|e| already_finished(&req.id, e))
        };
        later(
            Order::AtOnce(c.id().to_string()),
            work,
            |_, r: Result<()>| r.map(|()| Empty::new()),
        )
    }
}

fn signal_exec(c: &Container, exec_id: &str, signal: u32) -> Result<Empty> {
    c.with(exec_id, |p| p.signal(signal)).map(|()| Empty::new())
}

/// A runtime that no longer has the container, or whose process has ended, says the
/// process is gone: NOT_FOUND, as containerd expects of a late Kill.
fn already_finished(id: &str, e: RuntimeError) -> ShimError {
    match e {
        RuntimeError::NotFound { .. } | RuntimeError::NotRunning { .. } => {
            ShimError::NotFound(format!("{id}: process already finished"))
        }
        other => other.into(),
    }
}
