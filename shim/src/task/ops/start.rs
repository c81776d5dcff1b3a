//! Start: of a created init (`runtime start`), of an init created from a checkpoint
//! (`runtime restore`), or of an exec (`runtime exec`, its streams set up first). The
//! runtime command runs off the loop; the start and its event are recorded on the loop
//! before any exit of the process is reported, so /tasks/exit never precedes its start.

use crate::stdio::{Owner, ProcessIo, Pumps, StreamPaths};
use crate::sys::procfs::Moment;
use crate::task::container::Container;
use crate::task::error::{Result, ShimError};
use crate::task::job::{planned, Order, Plan, Reply};
use crate::task::process::{Restore, StartWith};
use crate::task::state::Status;
use crate::task::streams::{read_pid, start_with_streams};
use crate::task::TaskService;
use skiff_oci_runtime::{CheckpointOptions, CreateOptions, ExecOptions};
use skiff_protos::shim::{StartRequest, StartResponse};
use std::sync::Arc;

impl TaskService {
    pub fn start(&self, req: StartRequest) -> Reply<StartResponse> {
        let plan = match self.plan_start(&req) {
            Ok(plan) => plan,
            Err(e) => return Reply::Now(Err(e)),
        };
        let order = Order::InTurn(req.id.clone());
        planned(order, plan, TaskService::started)
    }

    fn plan_start(&self, req: &StartRequest) -> Result<StartPlan> {
        let c = self.container(&req.id)?;
        if !req.exec_id.is_empty() {
            c.with(&req.exec_id, |_| Ok(()))?;
            let init = c.with_init(|p| p.status());
            if init != Status::Running {
                return Err(ShimError::FailedPrecondition(format!(
                    "container {:?} is {init}: cannot start exec {:?}",
                    req.id, req.exec_id
                )));
            }
        }
        let (with, paths) = c.with(&req.exec_id, |p| Ok((p.begin_start()?, p.paths().clone())))?;
        Ok(StartPlan {
            container: c,
            exec_id: req.exec_id.clone(),
            with,
            paths,
            namespace: self.namespace.clone(),
            pumps: self.pumps.clone(),
        })
    }

    /// On the loop, when the runtime command has run.
    fn started(&self, done: Started) -> Result<StartResponse> {
        let Started {
            container: c,
            exec_id,
            result,
            since,
            retry,
        } = done;
        let (pid, io) = match result {
            Ok(started) => started,
            Err(e) => {
                let _ = c.with(&exec_id, |p| {
                    p.start_failed(retry);
                    Ok(())
                });
                return Err(e);
            }
        };
        let owned = self
            .container(c.id())
            .is_ok_and(|now| Arc::ptr_eq(&now, &c));
        let recorded = match owned {
            true => c.with(&exec_id, |p| {
                p.started(pid, io)?;
                Ok(p.pid())
            }),
            false => Err(ShimError::NotFound(format!(
                "container {:?} was deleted while its start ran",
                c.id()
            ))),
        };
        let pid = match recorded {
            Ok(pid) => pid,
            Err(e) => {
                if let Some(since) = since {
                    kill_orphan(pid, since, &e);
                }
                return Err(e);
            }
        };
        if exec_id.is_empty() {
            self.announce_start(c.id(), pid);
        } else {
            self.announce_exec_started(c.id(), &exec_id, pid);
        }
        // A created init's pid was claimed at Create; an exec's and a restored init's
        // are new.
        if let Some(since) = since {
            self.claim(pid, c.id(), &exec_id, since);
            if exec_id.is_empty() {
                self.watch_restored(&c, pid);
            }
        }
        Ok(StartResponse {
            pid,
            ..Default::default()
        })
    }
}

impl TaskService {
    /// A restored init's cgroup exists only now: Stats and OOM events from here on.
    fn watch_restored(&self, c: &Container, pid: u32) {
        if let Some(cg) = super::create::cgroup_of(c.id(), pid) {
            if c.found_cgroup(cg.clone()) {
                self.oom.add(c.id(), cg);
            }
        }
    }
}

/// A process a start made whose record is gone (deleted while the runtime command ran)
/// would run with no owner: no Kill would reach it and no exit be reported. It is killed
/// (if the pid still names the shim's child the command started), and the loop reaps it.
fn kill_orphan(pid: u32, since: Moment, why: &ShimError) {
    if pid == 0 || !crate::sys::procfs::is_own_child_since(pid, since) {
        return;
    }
    log::warn!("killing pid {pid}, started with no owner left: {why}");
    if let Err(e) = crate::sys::signal::send(pid, libc::SIGKILL as u32) {
        log::warn!("killing pid {pid}: {e}");
    }
}

/// What a Start does off the loop.
struct StartPlan {
    container: Arc<Container>,
    exec_id: String,
    with: StartWith,
    paths: StreamPaths,
    namespace: String,
    pumps: Arc<Pumps>,
}

/// What it did: the pid (0: the one the init had) and an exec's streams, and when the
/// command that made a new pid began.
struct Started {
    container: Arc<Container>,
    exec_id: String,
    result: Result<(u32, Option<ProcessIo>)>,
    since: Option<Moment>,
    /// What a failed start hands back for a later one (not a restore's streams, spent).
    retry: Option<StartWith>,
}

impl Plan for StartPlan {
    type Done = Started;

    fn run(self) -> Started {
        self.start()
    }

    /// The process is no longer being started, and keeps what a later Start needs.
    fn cancel(self, _: &TaskService) {
        let _ = self.container.with(&self.exec_id, |p| {
            p.start_failed(Some(self.with));
            Ok(())
        });
    }
}

impl StartPlan {
    fn start(mut self) -> Started {
        let since = Moment::now();
        let with = std::mem::replace(&mut self.with, StartWith::Created);
        let (result, new_pid, retry) = match with {
            StartWith::Created => (self.start_created(), false, Some(StartWith::Created)),
            StartWith::Restore(restore) => (self.restore(restore), true, None),
            StartWith::Exec(spec) => (self.exec(&spec), true, Some(StartWith::Exec(spec))),
        };
        Started {
            since: new_pid.then_some(since),
            container: self.container,
            exec_id: self.exec_id,
            result,
            retry,
        }
    }

    fn start_created(&self) -> Result<(u32, Option<ProcessIo>)> {
        self.container.runtime().start(self.container.id())?;
        Ok((0, None))
    }

    /// `runtime restore --detach` recreates the checkpointed init and starts it.
    fn restore(&self, restore: Restore) -> Result<(u32, Option<ProcessIo>)> {
        let c = &self.container;
        let pid_file = c.bundle().join("init.pid");
        let opts = CheckpointOptions {
            image_path: restore.image_path.into(),
            work_path: restore.work_path.map(Into::into),
            ..Default::default()
        };
        let create = CreateOptions {
            pid_file: Some(pid_file.clone()),
            ..Default::default()
        };
        c.runtime()
            .restore(c.id(), c.bundle(), &opts, &create, restore.stdio)?;
        Ok((read_pid(&pid_file)?, None))
    }

    /// `runtime exec` of an added exec, with its streams.
    fn exec(&self, spec: &[u8]) -> Result<(u32, Option<ProcessIo>)> {
        crate::sys::attach_warmup::begin();
        let c = &self.container;
        let process_file = c.bundle().join(format!("exec-{}.json", self.exec_id));
        let pid_file = c.bundle().join(format!("exec-{}.pid", self.exec_id));
        std::fs::write(&process_file, spec)
            .map_err(|e| ShimError::internal(format!("writing {}", process_file.display()), e))?;
        let owner = Owner {
            container_id: c.id(),
            namespace: &self.namespace,
            io_ids: c.io_owner(),
        };
        let what = format!("exec {}", self.exec_id);
        let started = start_with_streams(
            self.paths.clone(),
            &owner,
            &self.pumps,
            &what,
            |stdio, console| {
                let opts = ExecOptions {
                    process_file: process_file.clone(),
                    pid_file: Some(pid_file.clone()),
                    console_socket: console.map(Into::into),
                    detach: true,
                };
                Ok(c.runtime().exec(c.id(), &opts, stdio)?)
            },
        );
        let _ = std::fs::remove_file(&process_file);
        let pid = started.and_then(|((), io)| Ok((read_pid(&pid_file)?, Some(io))));
        let _ = std::fs::remove_file(&pid_file);
        pid
    }
}
