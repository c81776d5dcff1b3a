//! Delete: of an exec, on the loop (it is only the shim's record); of a container, off the
//! loop (`runtime delete`, then the rootfs unmounted), after which it leaves the service.

use crate::events::timestamp;
use crate::sys::reaper::Exit;
use crate::task::container::Container;
use crate::task::error::Result;
use crate::task::job::{later, Order, Reply};
use crate::task::state::Event;
use crate::task::TaskService;
use protobuf::MessageField;
use skiff_oci_runtime::{DeleteOptions, Error as RuntimeError};
use skiff_protos::shim::{DeleteRequest, DeleteResponse};
use std::sync::Arc;

impl TaskService {
    pub fn delete(&self, req: DeleteRequest) -> Reply<DeleteResponse> {
        let c = match self.container(&req.id) {
            Ok(c) => c,
            Err(e) => return Reply::Now(Err(e)),
        };
        if !req.exec_id.is_empty() {
            return self.delete_exec(&c, &req.exec_id).into();
        }
        let force = match c.with_init(|p| p.check(Event::Delete).map(|()| p.status())) {
            Ok(status) => status == crate::task::state::Status::Created,
            Err(e) => return Reply::Now(Err(e)),
        };
        let container = c.clone();
        let work = move || remove_from_runtime(&container, force);
        later(Order::InTurn(req.id.clone()), work, move |service, r| {
            r?;
            service.deleted(&c)
        })
    }

    fn delete_exec(&self, c: &Container, exec_id: &str) -> Result<DeleteResponse> {
        let (pid, exit) = c.with(exec_id, |p| Ok((p.pid(), p.delete()?)))?;
        c.remove_exec(exec_id);
        self.disown(c.id(), Some(exec_id));
        Ok(response(pid, exit))
    }

    /// On the loop, once the runtime no longer has the container.
    fn deleted(&self, c: &Arc<Container>) -> Result<DeleteResponse> {
        let (pid, exit) = c.with_init(|p| p.delete().map(|exit| (p.pid(), exit)))?;
        c.release_streams();
        self.containers.lock().unwrap().remove(c.id());
        self.oom.remove(c.id());
        self.disown(c.id(), None);
        self.announce_delete(c.id(), exit);
        Ok(response(pid, exit))
    }
}

/// `runtime delete` (forced for a container whose init never ran), then the rootfs the
/// shim mounted. A runtime that no longer has the container is what was wanted.
fn remove_from_runtime(c: &Container, force: bool) -> Result<()> {
    match c.runtime().delete(c.id(), &DeleteOptions { force }) {
        Ok(()) | Err(RuntimeError::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    if let Some(rootfs) = c.rootfs() {
        if let Err(e) = crate::sys::mount::unmount_all(rootfs) {
            log::error!("{}: {e}", c.id());
        }
    }
    Ok(())
}

fn response(pid: u32, exit: Exit) -> DeleteResponse {
    DeleteResponse {
        pid,
        exit_status: exit.status,
        exited_at: MessageField::some(timestamp(exit.at)),
        ..Default::default()
    }
}
