//! Creating a task: the row is claimed first (so a second create for the container
//! fails with ALREADY_EXISTS before it touches anything), then the bundle, the shim's
//! `start` (its address recorded at once), the shim's Create, and the row marked
//! created. A failure at any step, or at the next start after a crash at any step,
//! discards what the earlier steps made: the shim's task and the shim, the rootfs
//! mounts, the bundle, the row.

use super::TimedCall;
use super::{bundle, rows::CREATING, shim_err, TaskInfo, Tasks, CALL};
use crate::crash;
use crate::error::{Error, Result};
use crate::shim::resolve_runtime;
use crate::store::{namespace, ContainerRecord};
use skiff_protos::mount::Mount;
use skiff_protos::shim as api;
use skiff_shim_client::{Bootstrap, TaskClient};
use std::path::Path;
use std::sync::Arc;

/// How the new task's init process is attached.
pub struct NewTask {
    /// stdin, stdout, stderr: FIFO paths or log URIs.
    pub stdio: [String; 3],
    pub terminal: bool,
    /// Output to the container's log file instead.
    pub detach: bool,
}

impl Tasks {
    pub fn create(&self, ns: &str, id: &str, new: NewTask) -> Result<TaskInfo> {
        let ns = namespace(ns)?;
        self.locks.run(ns, id, || {
            let container = self.store.get_container(ns, id)?;
            let runtime = resolve_runtime(&container.runtime_name)?;
            let bundle = self.bundle_of(ns, id);
            self.claim(ns, id, &runtime, &bundle)?;
            crash::point("create-task:claimed");
            if let Err(e) = self.create_claimed(ns, &container, &runtime, &bundle, new) {
                self.discard(ns, id);
                return Err(e);
            }
            self.get(ns, id, "")
        })
    }

    fn create_claimed(
        &self,
        ns: &str,
        container: &ContainerRecord,
        runtime: &Path,
        bundle: &Path,
        new: NewTask,
    ) -> Result<()> {
        let id = container.id.as_str();
        let rootfs = self.prepare_bundle(ns, container, bundle)?;
        let [stdin, stdout, stderr] =
            self.task_stdio(ns, id, new.stdio, new.detach, new.terminal)?;
        let boot = self.launcher.start(runtime, ns, id, bundle)?;
        self.record_shim(ns, id, &boot)?;
        crash::point("create-task:started");
        let client = Arc::new(TaskClient::connect(&boot).map_err(Error::FailedPrecondition)?);
        let req = api::CreateTaskRequest {
            id: id.to_string(),
            bundle: bundle.display().to_string(),
            rootfs,
            terminal: new.terminal,
            stdin,
            stdout,
            stderr,
            ..Default::default()
        };
        let created: api::CreateTaskResponse =
            client.timed_call("Create", &req, CALL).map_err(shim_err)?;
        crash::point("create-task:created");
        self.record_created(ns, id, created.pid)?;
        self.shims
            .lock()
            .unwrap()
            .insert((ns.to_string(), id.to_string()), client);
        Ok(())
    }

    /// The bundle with the container's spec; returns the rootfs mounts for Create.
    /// Mounts a shim cannot take in one mount(2) (many layers): skiffd mounts the rootfs
    /// itself, and the shim finds it in the bundle.
    fn prepare_bundle(
        &self,
        ns: &str,
        container: &ContainerRecord,
        bundle: &Path,
    ) -> Result<Vec<Mount>> {
        let mounts = self.store.mounts(ns, &container.snapshot_key)?;
        bundle::prepare(bundle, &container.spec)?;
        // A shim may mount only what one mount(2) takes (containerd's and skiff's own take
        // long overlays too, but skiffd drives any shim): a longer one skiffd mounts itself.
        if skiff_mount::fits_mount_data(&mounts) {
            return Ok(mounts);
        }
        let rootfs = bundle.join("rootfs");
        skiff_mount::mount_all(&mounts, &rootfs)
            .map_err(|e| crate::error::io(format!("mounting {}", rootfs.display()), e))?;
        Ok(Vec::new())
    }

    /// A detached task's output goes through FIFOs that skiffd copies into the
    /// container's log, with its cap (`output`).
    fn task_stdio(
        &self,
        ns: &str,
        id: &str,
        stdio: [String; 3],
        detach: bool,
        terminal: bool,
    ) -> Result<[String; 3]> {
        let [stdin, stdout, stderr] = stdio;
        if !detach {
            return Ok([stdin, stdout, stderr]);
        }
        let output = self.output(ns, id);
        let [out, err] = output.make()?;
        output.follow(self.logs.max_size)?;
        let err = if terminal { String::new() } else { err };
        Ok([stdin, out, err])
    }

    /// Takes away a task whose creation did not finish: the shim is told to kill,
    /// delete and shut down (found by the address recorded, or the one it wrote into
    /// the bundle), the binary's `delete` cleans up after a shim that is gone, then the
    /// rootfs mounts, the bundle and the row go.
    pub(super) fn discard(&self, ns: &str, id: &str) {
        let Ok(row) = self.row(ns, id) else {
            return;
        };
        if row.status != CREATING {
            return;
        }
        self.forget_shim(ns, id);
        let bundle = Path::new(&row.bundle);
        let address = Some(row.address.clone())
            .filter(|a| !a.is_empty())
            .or_else(|| bundle::written_address(bundle));
        if let Some(address) = address {
            let version = row.version.max(2);
            if let Ok(c) = TaskClient::connect(&Bootstrap { address, version }) {
                stop_and_shut_down(&c, id);
            }
        }
        let _ = self
            .launcher
            .delete(Path::new(&row.runtime_path), ns, id, bundle);
        self.output(ns, id).release();
        if let Err(e) = bundle::remove(bundle) {
            crate::log::warn(&format!("discarding the task of {ns}/{id}: {e}"));
            return;
        }
        let _ = self.delete_row(ns, id);
    }
}

/// Kill, Delete, Shutdown: whatever state the task reached, none of it stays.
fn stop_and_shut_down(c: &TaskClient, id: &str) {
    use protobuf::well_known_types::empty::Empty;
    let kill = api::KillRequest {
        id: id.into(),
        signal: 9,
        all: true,
        ..Default::default()
    };
    let _ = c.timed_call::<_, Empty>("Kill", &kill, CALL);
    let delete = api::DeleteRequest {
        id: id.into(),
        ..Default::default()
    };
    let _ = c.timed_call::<_, api::DeleteResponse>("Delete", &delete, CALL);
    let shutdown = api::ShutdownRequest {
        id: id.into(),
        ..Default::default()
    };
    let _ = c.timed_call::<_, Empty>("Shutdown", &shutdown, CALL);
}
