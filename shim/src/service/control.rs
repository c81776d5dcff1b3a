//! Start, Kill, Delete, Pause, Resume, Update, Pids, CloseIO, ResizePty and State.

use super::TaskService;
use crate::error::{Result, ShimError};
use crate::events::timestamp;
use crate::mount;
use crate::process::Status;
use crate::reaper::Exit;
use crate::validate;
use protobuf::well_known_types::any::Any;
use protobuf::well_known_types::empty::Empty;
use protobuf::{Message, MessageField};
use runc_driver::{CheckpointOptions, DeleteOptions, KillOptions};
use skiff_protos::options::CheckpointOptions as CheckpointOptionsMsg;
use skiff_protos::shim::*;
use skiff_protos::task::ProcessInfo;
use skiff_protos::task_events::{TaskCheckpointed, TaskDelete, TaskPaused, TaskResumed, TaskStart};
use skiff_protos::type_url;
use std::time::SystemTime;

impl TaskService {
    pub fn start(&self, req: StartRequest) -> Result<StartResponse> {
        let c = self.container(&req.id)?;
        // The lock is held across the runtime call: an exit that comes meanwhile is
        // handled after, so /tasks/exit never precedes /tasks/start.
        let mut procs = c.processes.lock().unwrap();
        let init_status = procs.init.status;
        let p = procs.get_mut(&req.exec_id)?;
        if p.status != Status::Created {
            return Err(ShimError::FailedPrecondition(format!(
                "{} of {:?} is {}: cannot start it",
                p.name(),
                req.id,
                p.status
            )));
        }
        // A pid first known now (an exec, or a restored init) is claimed from the
        // reaper; a created init's pid was claimed at Create.
        let new_pid = if !req.exec_id.is_empty() {
            if init_status != Status::Running {
                return Err(ShimError::FailedPrecondition(format!(
                    "container {:?} is {init_status}: cannot start exec {:?}",
                    req.id, req.exec_id
                )));
            }
            Some(self.start_exec(&req.id, &c, p, &req.exec_id)?)
        } else {
            let restored = match p.restore.take() {
                Some(restore) => Some(self.restore_init(&req.id, &c, restore)?),
                None => {
                    c.runtime.start(&req.id)?;
                    None
                }
            };
            if let Some(pid) = restored {
                p.pid = pid;
                // Its cgroup exists only now: Stats and OOM events from here on.
                match skiff_cgroups::Cgroup::of_pid(pid) {
                    Ok(cg) => {
                        self.oom.add(&req.id, cg.clone());
                        let _ = c.cgroup.set(cg);
                    }
                    Err(e) => log::warn!("{}: no cgroup for stats and OOM events: {e}", req.id),
                }
            }
            p.transition(Status::Running)?;
            self.publish(
                "/tasks/start",
                type_url::TASK_START,
                &TaskStart {
                    container_id: req.id.clone(),
                    pid: p.pid,
                    ..Default::default()
                },
            );
            restored
        };
        let pid = p.pid;
        let early = new_pid.and_then(|pid| self.claim_pid(pid, &req.id, &req.exec_id));
        drop(procs);
        if let Some(exit) = early {
            self.handle_exit(exit);
        }
        Ok(StartResponse {
            pid,
            ..Default::default()
        })
    }

    /// Restores a checkpointed init: `runtime restore --detach` starts it.
    fn restore_init(
        &self,
        id: &str,
        c: &crate::container::Container,
        restore: crate::process::Restore,
    ) -> Result<u32> {
        let pid_file = c.bundle.join("init.pid");
        let opts = CheckpointOptions {
            image_path: restore.image_path.into(),
            work_path: restore.work_path.map(Into::into),
            ..Default::default()
        };
        let create = runc_driver::CreateOptions {
            pid_file: Some(pid_file.clone()),
            ..Default::default()
        };
        c.runtime
            .restore(id, &c.bundle, &opts, &create, restore.stdio)?;
        super::read_pid(&pid_file)
    }

    pub fn checkpoint(&self, req: CheckpointTaskRequest) -> Result<Empty> {
        validate::absolute_path("checkpoint", &req.path).map_err(ShimError::InvalidArgument)?;
        let c = self.container(&req.id)?;
        let procs = c.processes.lock().unwrap();
        if !matches!(procs.init.status, Status::Running | Status::Paused) {
            return Err(ShimError::FailedPrecondition(format!(
                "container {:?} is {}: cannot checkpoint it",
                req.id, procs.init.status
            )));
        }
        let wanted = match req.options.as_ref().filter(|o| !o.value.is_empty()) {
            Some(any) => CheckpointOptionsMsg::parse_from_bytes(&any.value).map_err(|e| {
                ShimError::InvalidArgument(format!("cannot decode checkpoint options: {e}"))
            })?,
            None => CheckpointOptionsMsg::default(),
        };
        let image_path = if wanted.image_path.is_empty() {
            req.path.clone()
        } else {
            wanted.image_path.clone()
        };
        let opts = CheckpointOptions {
            image_path: image_path.into(),
            work_path: (!wanted.work_path.is_empty()).then(|| wanted.work_path.clone().into()),
            leave_running: !wanted.exit,
            tcp_established: wanted.open_tcp,
            ext_unix_sk: wanted.external_unix_sockets,
            shell_job: wanted.terminal,
            file_locks: wanted.file_locks,
            manage_cgroups_mode: (!wanted.cgroups_mode.is_empty())
                .then(|| wanted.cgroups_mode.clone()),
            empty_namespaces: wanted.empty_namespaces.clone(),
        };
        c.runtime.checkpoint(&req.id, &opts)?;
        self.publish(
            "/tasks/checkpointed",
            type_url::TASK_CHECKPOINTED,
            &TaskCheckpointed {
                container_id: req.id.clone(),
                checkpoint: req.path.clone(),
                ..Default::default()
            },
        );
        Ok(Empty::new())
    }

    pub fn kill(&self, req: KillRequest) -> Result<Empty> {
        let c = self.container(&req.id)?;
        let procs = c.processes.lock().unwrap();
        let p = procs.get(&req.exec_id)?;
        p.ensure_signalable()?;
        if !req.exec_id.is_empty() {
            if p.pid == 0 {
                return Err(ShimError::FailedPrecondition(format!(
                    "exec {:?} has not been started",
                    req.exec_id
                )));
            }
            // SAFETY: kill(2) on the pid of a process we started and have not reaped.
            if unsafe { libc::kill(p.pid as i32, req.signal as i32) } != 0 {
                let e = std::io::Error::last_os_error();
                return Err(match e.raw_os_error() {
                    Some(libc::ESRCH) => ShimError::NotFound(format!(
                        "exec {:?}: process already finished",
                        req.exec_id
                    )),
                    _ => ShimError::internal(format!("signalling exec {:?}", req.exec_id), e),
                });
            }
            return Ok(Empty::new());
        }
        c.runtime
            .kill(&req.id, req.signal, &KillOptions { all: req.all })
            .map_err(|e| match e.runtime_message() {
                Some(m) if m.contains("not running") || m.contains("does not exist") => {
                    ShimError::NotFound(format!("{}: process already finished", req.id))
                }
                _ => e.into(),
            })?;
        Ok(Empty::new())
    }

    pub fn delete(&self, req: DeleteRequest) -> Result<DeleteResponse> {
        let c = self.container(&req.id)?;
        let mut procs = c.processes.lock().unwrap();
        if !req.exec_id.is_empty() {
            let p = procs.get_mut(&req.exec_id)?;
            let was = p.status;
            p.transition(Status::Deleted).map_err(|_| {
                ShimError::FailedPrecondition(format!(
                    "cannot delete exec {:?}: it is {was}",
                    req.exec_id
                ))
            })?;
            let p = procs.execs.remove(&req.exec_id).expect("found above");
            drop(procs);
            self.pids.lock().unwrap().owners.remove(&p.pid);
            let exit = p.exit.unwrap_or(Exit {
                pid: p.pid,
                status: 0,
                at: SystemTime::now(),
            });
            return Ok(DeleteResponse {
                pid: p.pid,
                exit_status: exit.status,
                exited_at: MessageField::some(timestamp(exit.at)),
                ..Default::default()
            });
        }
        let was = procs.init.status;
        procs.init.transition(Status::Deleted).map_err(|_| {
            ShimError::FailedPrecondition(format!(
                "cannot delete container {:?}: its init process is {was}",
                req.id
            ))
        })?;
        let force = was == Status::Created;
        if let Err(e) = c.runtime.delete(&req.id, &DeleteOptions { force }) {
            let gone = e
                .runtime_message()
                .is_some_and(|m| m.contains("does not exist"));
            if !gone {
                procs.init.status = was;
                return Err(e.into());
            }
        }
        if let Some(rootfs) = &c.rootfs {
            if let Err(e) = mount::unmount_all(rootfs) {
                log::error!("{}: {e}", req.id);
            }
        }
        procs.init.io = None;
        for exec in procs.execs.values_mut() {
            exec.io = None;
        }
        let pid = procs.init.pid;
        let exit = procs.init.exit.unwrap_or(Exit {
            pid,
            status: 0,
            at: SystemTime::now(),
        });
        c.exited.notify_all();
        drop(procs);
        self.containers.lock().unwrap().remove(&req.id);
        self.oom.remove(&req.id);
        self.pids
            .lock()
            .unwrap()
            .owners
            .retain(|_, (cid, _)| cid != &req.id);
        self.publish(
            "/tasks/delete",
            type_url::TASK_DELETE,
            &TaskDelete {
                container_id: req.id.clone(),
                pid,
                exit_status: exit.status,
                exited_at: MessageField::some(timestamp(exit.at)),
                ..Default::default()
            },
        );
        Ok(DeleteResponse {
            pid,
            exit_status: exit.status,
            exited_at: MessageField::some(timestamp(exit.at)),
            ..Default::default()
        })
    }

    pub fn state(&self, req: StateRequest) -> Result<StateResponse> {
        let c = self.container(&req.id)?;
        let procs = c.processes.lock().unwrap();
        let p = procs.get(&req.exec_id)?;
        Ok(StateResponse {
            id: if req.exec_id.is_empty() {
                req.id.clone()
            } else {
                req.exec_id.clone()
            },
            bundle: c.bundle.to_string_lossy().into_owned(),
            pid: p.pid,
            status: p.status.wire().into(),
            stdin: p.paths.stdin.clone(),
            stdout: p.paths.stdout.clone(),
            stderr: p.paths.stderr.clone(),
            terminal: p.paths.terminal,
            exit_status: p.exit.map(|e| e.status).unwrap_or_default(),
            exited_at: MessageField::from_option(p.exit.map(|e| timestamp(e.at))),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        })
    }

    pub fn pids(&self, req: PidsRequest) -> Result<PidsResponse> {
        let c = self.container(&req.id)?;
        let pids = c.runtime.ps(&req.id)?;
        let procs = c.processes.lock().unwrap();
        let processes = pids
            .into_iter()
            .map(|pid| {
                let exec = procs.execs.values().find(|e| e.pid == pid);
                ProcessInfo {
                    pid,
                    info: MessageField::from_option(exec.map(|e| {
                        Any {
                            type_url: type_url::PROCESS_DETAILS.into(),
                            value: skiff_protos::options::ProcessDetails {
                                exec_id: e.exec_id.clone().unwrap_or_default(),
                                ..Default::default()
                            }
                            .write_to_bytes()
                            .unwrap_or_default(),
                            ..Default::default()
                        }
                    })),
                    ..Default::default()
                }
            })
            .collect();
        Ok(PidsResponse {
            processes,
            ..Default::default()
        })
    }

    pub fn close_io(&self, req: CloseIORequest) -> Result<Empty> {
        let c = self.container(&req.id)?;
        let mut procs = c.processes.lock().unwrap();
        let p = procs.get_mut(&req.exec_id)?;
        if req.stdin {
            if let Some(io) = p.io.as_mut() {
                io.close_stdin();
            }
        }
        Ok(Empty::new())
    }

    pub fn resize_pty(&self, req: ResizePtyRequest) -> Result<Empty> {
        let c = self.container(&req.id)?;
        let procs = c.processes.lock().unwrap();
        let p = procs.get(&req.exec_id)?;
        let io = p.io.as_ref().ok_or_else(|| {
            ShimError::FailedPrecondition(format!("{} has no terminal open", p.name()))
        })?;
        io.resize(req.width, req.height)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::Unsupported => {
                    ShimError::FailedPrecondition(format!("{} has no terminal", p.name()))
                }
                _ => ShimError::internal("resizing the terminal", e),
            })?;
        Ok(Empty::new())
    }

    pub fn pause(&self, req: PauseRequest) -> Result<Empty> {
        let c = self.container(&req.id)?;
        let mut procs = c.processes.lock().unwrap();
        if procs.init.status != Status::Running {
            return procs.init.transition(Status::Paused).map(|_| Empty::new());
        }
        c.runtime.pause(&req.id)?;
        procs.init.transition(Status::Paused)?;
        self.publish(
            "/tasks/paused",
            type_url::TASK_PAUSED,
            &TaskPaused {
                container_id: req.id.clone(),
                ..Default::default()
            },
        );
        Ok(Empty::new())
    }

    pub fn resume(&self, req: ResumeRequest) -> Result<Empty> {
        let c = self.container(&req.id)?;
        let mut procs = c.processes.lock().unwrap();
        if procs.init.status != Status::Paused {
            return Err(ShimError::FailedPrecondition(format!(
                "container {:?} is {}: cannot resume it",
                req.id, procs.init.status
            )));
        }
        c.runtime.resume(&req.id)?;
        procs.init.transition(Status::Running)?;
        self.publish(
            "/tasks/resumed",
            type_url::TASK_RESUMED,
            &TaskResumed {
                container_id: req.id.clone(),
                ..Default::default()
            },
        );
        Ok(Empty::new())
    }

    pub fn stats(&self, req: StatsRequest) -> Result<StatsResponse> {
        let c = self.container(&req.id)?;
        let cgroup = c.cgroup.get().ok_or_else(|| {
            ShimError::NotFound(format!("container {:?} has no cgroup to read", req.id))
        })?;
        let (type_url, value) = match cgroup.metrics() {
            skiff_cgroups::Metrics::V1(m) => (type_url::CGROUPS_V1_METRICS, m.write_to_bytes()),
            skiff_cgroups::Metrics::V2(m) => (type_url::CGROUPS_V2_METRICS, m.write_to_bytes()),
        };
        let value = value.map_err(|e| ShimError::internal("encoding metrics", e))?;
        Ok(StatsResponse {
            stats: MessageField::some(Any {
                type_url: type_url.to_string(),
                value,
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    pub fn update(&self, req: UpdateTaskRequest) -> Result<Empty> {
        let c = self.container(&req.id)?;
        let resources = req.resources.as_ref().ok_or_else(|| {
            ShimError::InvalidArgument("update request carries no resources".into())
        })?;
        c.runtime.update(&req.id, &resources.value)?;
        Ok(Empty::new())
    }
}
