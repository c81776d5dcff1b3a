//! Tasks: a container's processes, run through its runtime's shim. skiffd makes the
//! bundle (the stored spec, and the snapshot's mounts for Create), starts the shim as
//! containerd would, and records which shim serves the task, so that after a restart
//! it reconnects, or, when the shim is gone, runs the binary's `delete` and records the
//! exit.

use crate::db::now;
use crate::error::{io, Error, Result};
use crate::events::EventLog;
use crate::shim::{resolve_runtime, Launcher};
use crate::store::{namespace, Store};
use protobuf::well_known_types::any::Any;
use protobuf::{Message, MessageField};
use rusqlite::{params, OptionalExtension};
use skiff_protos::shim as api;
use skiff_protos::task::Status;
use skiff_protos::task_client::{Bootstrap, TaskClient};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CALL: Duration = Duration::from_secs(60);
const WAIT: Duration = Duration::from_secs(365 * 24 * 3600);

/// An exec to add to a running task.
pub struct NewExec {
    pub exec_id: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub terminal: bool,
    /// stdin, stdout, stderr: FIFO paths or log URIs.
    pub stdio: [String; 3],
}

/// A task as skiffd knows it.
#[derive(Debug, Clone, Default)]
pub struct TaskInfo {
    pub container_id: String,
    pub exec_id: String,
    pub pid: u32,
    pub status: String,
    pub exit_status: u32,
    pub exited_at: i64,
    pub runtime: String,
    pub image: String,
}

struct Row {
    runtime_path: String,
    address: String,
    version: u32,
    bundle: String,
    pid: u32,
    status: String,
    exit_status: u32,
    exited_at: i64,
}

pub struct Tasks {
    store: Arc<Store>,
    launcher: Launcher,
    state: PathBuf,
    pub events: Arc<EventLog>,
    shims: Mutex<HashMap<(String, String), Arc<TaskClient>>>,
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::CREATED => "created",
        Status::RUNNING => "running",
        Status::STOPPED => "stopped",
        Status::PAUSED | Status::PAUSING => "paused",
        _ => "unknown",
    }
}

fn shim_err(e: ttrpc::Error) -> Error {
    match e {
        ttrpc::Error::RpcStatus(s) => {
            let msg = s.message().to_string();
            match s.code() {
                ttrpc::Code::NOT_FOUND => Error::NotFound(msg),
                ttrpc::Code::ALREADY_EXISTS => Error::AlreadyExists(msg),
                ttrpc::Code::INVALID_ARGUMENT => Error::InvalidArgument(msg),
                ttrpc::Code::FAILED_PRECONDITION => Error::FailedPrecondition(msg),
                _ => Error::Io(msg),
            }
        }
        other => Error::Io(format!("the shim: {other}")),
    }
}

impl Tasks {
    pub fn new(
        store: Arc<Store>,
        launcher: Launcher,
        state: &Path,
        events: Arc<EventLog>,
    ) -> Tasks {
        Tasks {
            store,
            launcher,
            state: state.to_path_buf(),
            events,
            shims: Mutex::new(HashMap::new()),
        }
    }

    fn bundle_of(&self, ns: &str, id: &str) -> PathBuf {
        self.state.join("bundles").join(ns).join(id)
    }

    pub fn log_path(&self, ns: &str, id: &str) -> PathBuf {
        self.bundle_of(ns, id).join("output.log")
    }

    fn row(&self, ns: &str, id: &str) -> Result<Row> {
        self.store
            .db
            .tx(|tx| {
                Ok(tx
                    .query_row(
                        "SELECT runtime_path, address, version, bundle, pid, status, exit_status, exited_at FROM tasks WHERE namespace = ?1 AND container_id = ?2",
                        params![ns, id],
                        |r| {
                            Ok(Row {
                                runtime_path: r.get(0)?,
                                address: r.get(1)?,
                                version: r.get(2)?,
                                bundle: r.get(3)?,
                                pid: r.get(4)?,
                                status: r.get(5)?,
                                exit_status: r.get(6)?,
                                exited_at: r.get(7)?,
                            })
                        },
                    )
                    .optional()?)
            })?
            .ok_or_else(|| Error::NotFound(format!("container {id:?} has no task")))
    }

    fn set_status(&self, ns: &str, id: &str, status: &str, exit: Option<(u32, i64)>) -> Result<()> {
        self.store.db.tx(|tx| {
            match exit {
                Some((code, at)) => tx.execute(
                    "UPDATE tasks SET status = ?3, exit_status = ?4, exited_at = ?5 WHERE namespace = ?1 AND container_id = ?2",
                    params![ns, id, status, code, at],
                )?,
                None => tx.execute(
                    "UPDATE tasks SET status = ?3 WHERE namespace = ?1 AND container_id = ?2",
                    params![ns, id, status],
                )?,
            };
            Ok(())
        })
    }

    fn shim(&self, ns: &str, id: &str) -> Result<Arc<TaskClient>> {
        if let Some(c) = self
            .shims
            .lock()
            .unwrap()
            .get(&(ns.to_string(), id.to_string()))
        {
            return Ok(c.clone());
        }
        self.row(ns, id)?;
        Err(Error::FailedPrecondition(format!(
            "the shim of {id:?} is gone; delete the task"
        )))
    }

    pub fn create(
        &self,
        ns: &str,
        id: &str,
        stdio: [String; 3],
        terminal: bool,
        detach: bool,
    ) -> Result<TaskInfo> {
        let ns = namespace(ns)?;
        let container = self.store.get_container(ns, id)?;
        if self.row(ns, id).is_ok() {
            return Err(Error::AlreadyExists(format!(
                "container {id:?} already has a task"
            )));
        }
        let runtime = resolve_runtime(&container.runtime_name)?;
        let mounts = self.store.mounts(ns, &container.snapshot_key)?;
        let bundle = self.bundle_of(ns, id);
        let _ = std::fs::remove_dir_all(&bundle);
        std::fs::create_dir_all(bundle.join("rootfs")).map_err(|e| io("creating the bundle", e))?;
        let result = (|| {
            std::fs::write(bundle.join("config.json"), &container.spec)
                .map_err(|e| io("writing config.json", e))?;
            let [stdin, mut stdout, mut stderr] = stdio;
            if detach {
                let log = format!("file://{}", self.log_path(ns, id).display());
                (stdout, stderr) = (log.clone(), if terminal { String::new() } else { log });
            }
            let boot = self.launcher.start(&runtime, ns, id, &bundle)?;
            let client = Arc::new(TaskClient::connect(&boot).map_err(Error::FailedPrecondition)?);
            let req = api::CreateTaskRequest {
                id: id.to_string(),
                bundle: bundle.display().to_string(),
                rootfs: mounts,
                terminal,
                stdin,
                stdout,
                stderr,
                ..Default::default()
            };
            let created: api::CreateTaskResponse = match client.call("Create", &req, CALL) {
                Ok(r) => r,
                Err(e) => {
                    let _ = client.call::<_, protobuf::well_known_types::empty::Empty>(
                        "Shutdown",
                        &api::ShutdownRequest::default(),
                        CALL,
                    );
                    return Err(shim_err(e));
                }
            };
            self.store.db.tx(|tx| {
                tx.execute(
                    "INSERT INTO tasks (namespace, container_id, runtime_path, address, version, bundle, pid, status, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'created', ?8)",
                    params![ns, id, runtime.display().to_string(), boot.address, boot.version, bundle.display().to_string(), created.pid, now()],
                )?;
                Ok(())
            })?;
            self.shims
                .lock()
                .unwrap()
                .insert((ns.to_string(), id.to_string()), client);
            Ok(())
        })();
        if let Err(e) = result {
            unmount_rootfs(&bundle);
            let _ = std::fs::remove_dir_all(&bundle);
            return Err(e);
        }
        self.get(ns, id, "")
    }

    pub fn start(&self, ns: &str, id: &str, exec_id: &str) -> Result<TaskInfo> {
        let ns = namespace(ns)?;
        let c = self.shim(ns, id)?;
        let r: api::StartResponse = c
            .call(
                "Start",
                &api::StartRequest {
                    id: id.into(),
                    exec_id: exec_id.into(),
                    ..Default::default()
                },
                CALL,
            )
            .map_err(shim_err)?;
        if exec_id.is_empty() {
            self.set_status(ns, id, "running", None)?;
        }
        let mut t = self.get(ns, id, exec_id)?;
        t.pid = r.pid;
        Ok(t)
    }

    /// State from the shim when it lives, else what was recorded.
    pub fn get(&self, ns: &str, id: &str, exec_id: &str) -> Result<TaskInfo> {
        let ns = namespace(ns)?;
        let row = self.row(ns, id)?;
        let image = self
            .store
            .get_container(ns, id)
            .map(|c| c.image)
            .unwrap_or_default();
        let runtime = row.runtime_path.clone();
        let recorded = TaskInfo {
            container_id: id.into(),
            exec_id: exec_id.into(),
            pid: row.pid,
            status: row.status.clone(),
            exit_status: row.exit_status,
            exited_at: row.exited_at,
            runtime: runtime.clone(),
            image: image.clone(),
        };
        let Ok(c) = self.shim(ns, id) else {
            return if exec_id.is_empty() {
                Ok(recorded)
            } else {
                Err(Error::NotFound(format!(
                    "exec {exec_id:?} is gone with its shim"
                )))
            };
        };
        let s: api::StateResponse = match c.call(
            "State",
            &api::StateRequest {
                id: id.into(),
                exec_id: exec_id.into(),
                ..Default::default()
            },
            CALL,
        ) {
            Ok(s) => s,
            Err(ttrpc::Error::RpcStatus(st)) => return Err(shim_err(ttrpc::Error::RpcStatus(st))),
            Err(_) if exec_id.is_empty() => return Ok(recorded),
            Err(e) => return Err(shim_err(e)),
        };
        let status = status_name(s.status.enum_value().unwrap_or(Status::UNKNOWN)).to_string();
        let exited_at = crate::db::timestamp_nanos(s.exited_at.as_ref());
        if exec_id.is_empty() && status != row.status {
            let exit = (status == "stopped").then_some((s.exit_status, exited_at));
            self.set_status(ns, id, &status, exit)?;
        }
        Ok(TaskInfo {
            container_id: id.into(),
            exec_id: exec_id.into(),
            pid: s.pid,
            status,
            exit_status: s.exit_status,
            exited_at,
            runtime,
            image,
        })
    }

    pub fn list(&self, ns: &str) -> Result<Vec<TaskInfo>> {
        let ns = namespace(ns)?;
        let ids: Vec<String> = self.store.db.tx(|tx| {
            let mut stmt = tx.prepare(
                "SELECT container_id FROM tasks WHERE namespace = ?1 ORDER BY created_at",
            )?;
            let rows = stmt.query_map(params![ns], |r| r.get(0))?;
            Ok(rows.collect::<std::result::Result<_, _>>()?)
        })?;
        ids.iter().map(|id| self.get(ns, id, "")).collect()
    }

    pub fn kill(&self, ns: &str, id: &str, exec_id: &str, signal: u32, all: bool) -> Result<()> {
        let ns = namespace(ns)?;
        let req = api::KillRequest {
            id: id.into(),
            exec_id: exec_id.into(),
            signal,
            all,
            ..Default::default()
        };
        self.shim(ns, id)?
            .call::<_, protobuf::well_known_types::empty::Empty>("Kill", &req, CALL)
            .map_err(shim_err)?;
        Ok(())
    }

    pub fn wait(&self, ns: &str, id: &str, exec_id: &str) -> Result<TaskInfo> {
        let ns = namespace(ns)?;
        let c = self.shim(ns, id)?;
        let r: api::WaitResponse = c
            .call(
                "Wait",
                &api::WaitRequest {
                    id: id.into(),
                    exec_id: exec_id.into(),
                    ..Default::default()
                },
                WAIT,
            )
            .map_err(shim_err)?;
        let at = Some(crate::db::timestamp_nanos(r.exited_at.as_ref()))
            .filter(|t| *t > 0)
            .unwrap_or_else(now);
        if exec_id.is_empty() {
            self.set_status(ns, id, "stopped", Some((r.exit_status, at)))?;
        }
        Ok(TaskInfo {
            container_id: id.into(),
            exec_id: exec_id.into(),
            status: "stopped".into(),
            exit_status: r.exit_status,
            exited_at: at,
            ..Default::default()
        })
    }

    /// Deletes an exec, or the task: its process must have exited; the shim is shut
    /// down (or, if it is gone, its binary's `delete` cleans up) and the bundle removed.
    pub fn delete(&self, ns: &str, id: &str, exec_id: &str) -> Result<TaskInfo> {
        let ns = namespace(ns)?;
        let row = self.row(ns, id)?;
        let req = api::DeleteRequest {
            id: id.into(),
            exec_id: exec_id.into(),
            ..Default::default()
        };
        let shim = self.shim(ns, id).ok();
        if !exec_id.is_empty() {
            let c = shim.ok_or_else(|| {
                Error::NotFound(format!("exec {exec_id:?} is gone with its shim"))
            })?;
            let r: api::DeleteResponse = c.call("Delete", &req, CALL).map_err(shim_err)?;
            return Ok(TaskInfo {
                container_id: id.into(),
                exec_id: exec_id.into(),
                pid: r.pid,
                status: "deleted".into(),
                exit_status: r.exit_status,
                ..Default::default()
            });
        }
        let bundle = PathBuf::from(&row.bundle);
        let (exit_status, pid) = match shim {
            Some(c) => {
                let r: api::DeleteResponse = c.call("Delete", &req, CALL).map_err(shim_err)?;
                let _ = c.call::<_, protobuf::well_known_types::empty::Empty>(
                    "Shutdown",
                    &api::ShutdownRequest {
                        id: id.into(),
                        ..Default::default()
                    },
                    CALL,
                );
                (r.exit_status, r.pid)
            }
            None if row.status == "stopped" => (row.exit_status, row.pid),
            None => self
                .launcher
                .delete(Path::new(&row.runtime_path), ns, id, &bundle)
                .unwrap_or((137, row.pid)),
        };
        self.shims
            .lock()
            .unwrap()
            .remove(&(ns.to_string(), id.to_string()));
        self.store.db.tx(|tx| {
            tx.execute(
                "DELETE FROM tasks WHERE namespace = ?1 AND container_id = ?2",
                params![ns, id],
            )?;
            Ok(())
        })?;
        unmount_rootfs(&bundle);
        let _ = std::fs::remove_dir_all(&bundle);
        Ok(TaskInfo {
            container_id: id.into(),
            pid,
            status: "deleted".into(),
            exit_status,
            ..Default::default()
        })
    }

    pub fn exec(&self, ns: &str, id: &str, e: NewExec) -> Result<()> {
        let NewExec {
            exec_id,
            args,
            env,
            terminal,
            stdio,
        } = e;
        let exec_id = exec_id.as_str();
        let ns = namespace(ns)?;
        crate::error::check_id("exec id", exec_id)?;
        let container = self.store.get_container(ns, id)?;
        let spec: serde_json::Value = serde_json::from_slice(&container.spec)
            .map_err(|e| Error::Corrupt(format!("the spec of {id}: {e}")))?;
        let mut process = spec["process"].clone();
        if args.is_empty() {
            return Err(Error::InvalidArgument("exec needs a command".into()));
        }
        process["args"] = serde_json::json!(args);
        process["terminal"] = serde_json::json!(terminal);
        if let Some(all) = process["env"].as_array_mut() {
            all.extend(env.into_iter().map(serde_json::Value::String));
        }
        let [stdin, stdout, stderr] = stdio;
        let req = api::ExecProcessRequest {
            id: id.into(),
            exec_id: exec_id.into(),
            terminal,
            stdin,
            stdout,
            stderr,
            spec: MessageField::some(Any {
                type_url: "types.containerd.io/opencontainers/runtime-spec/1/Process".into(),
                value: serde_json::to_vec(&process).unwrap_or_default(),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.shim(ns, id)?
            .call::<_, protobuf::well_known_types::empty::Empty>("Exec", &req, CALL)
            .map_err(shim_err)?;
        Ok(())
    }

    fn simple<Req: Message>(&self, ns: &str, id: &str, method: &str, req: &Req) -> Result<()> {
        let ns = namespace(ns)?;
        self.shim(ns, id)?
            .call::<_, protobuf::well_known_types::empty::Empty>(method, req, CALL)
            .map_err(shim_err)?;
        Ok(())
    }

    pub fn pause(&self, ns: &str, id: &str) -> Result<()> {
        self.simple(
            ns,
            id,
            "Pause",
            &api::PauseRequest {
                id: id.into(),
                ..Default::default()
            },
        )
    }

    pub fn resume(&self, ns: &str, id: &str) -> Result<()> {
        self.simple(
            ns,
            id,
            "Resume",
            &api::ResumeRequest {
                id: id.into(),
                ..Default::default()
            },
        )
    }

    pub fn resize(&self, ns: &str, id: &str, exec_id: &str, width: u32, height: u32) -> Result<()> {
        self.simple(
            ns,
            id,
            "ResizePty",
            &api::ResizePtyRequest {
                id: id.into(),
                exec_id: exec_id.into(),
                width,
                height,
                ..Default::default()
            },
        )
    }

    pub fn close_stdin(&self, ns: &str, id: &str, exec_id: &str) -> Result<()> {
        self.simple(
            ns,
            id,
            "CloseIO",
            &api::CloseIORequest {
                id: id.into(),
                exec_id: exec_id.into(),
                stdin: true,
                ..Default::default()
            },
        )
    }

    pub fn update_memory(&self, ns: &str, id: &str, limit: i64) -> Result<()> {
        let resources = serde_json::json!({ "memory": { "limit": limit } });
        let req = api::UpdateTaskRequest {
            id: id.into(),
            resources: MessageField::some(Any {
                type_url: "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources".into(),
                value: serde_json::to_vec(&resources).unwrap_or_default(),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.simple(ns, id, "Update", &req)
    }

    pub fn pids(&self, ns: &str, id: &str) -> Result<Vec<u32>> {
        let ns = namespace(ns)?;
        let r: api::PidsResponse = self
            .shim(ns, id)?
            .call(
                "Pids",
                &api::PidsRequest {
                    id: id.into(),
                    ..Default::default()
                },
                CALL,
            )
            .map_err(shim_err)?;
        Ok(r.processes.iter().map(|p| p.pid).collect())
    }

    /// (memory usage, memory limit, CPU ns, pids) from the shim's cgroup metrics.
    pub fn stats(&self, ns: &str, id: &str) -> Result<(u64, u64, u64, u64)> {
        let ns = namespace(ns)?;
        let r: api::StatsResponse = self
            .shim(ns, id)?
            .call(
                "Stats",
                &api::StatsRequest {
                    id: id.into(),
                    ..Default::default()
                },
                CALL,
            )
            .map_err(shim_err)?;
        let any = r
            .stats
            .as_ref()
            .ok_or_else(|| Error::Io("the shim sent no stats".into()))?;
        let bad =
            |e: protobuf::Error| Error::Io(format!("undecodable stats {}: {e}", any.type_url));
        if any.type_url.ends_with("cgroups.v1.Metrics") {
            let m = skiff_protos::metrics_v1::Metrics::parse_from_bytes(&any.value).map_err(bad)?;
            let (usage, limit) = m
                .memory
                .usage
                .as_ref()
                .map(|u| (u.usage, u.limit))
                .unwrap_or_default();
            let cpu = m.cpu.usage.as_ref().map(|u| u.total).unwrap_or(0);
            Ok((usage, limit, cpu, m.pids.current))
        } else {
            let m = skiff_protos::metrics_v2::Metrics::parse_from_bytes(&any.value).map_err(bad)?;
            Ok((
                m.memory.usage,
                m.memory.usage_limit,
                m.cpu.usage_usec * 1000,
                m.pids.current,
            ))
        }
    }

    pub fn logs(&self, ns: &str, id: &str) -> Result<Vec<u8>> {
        let ns = namespace(ns)?;
        self.row(ns, id)?;
        match std::fs::read(self.log_path(ns, id)) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(io("reading the log", e)),
        }
    }

    /// An exit event from a shim: recorded for the task's init process.
    pub fn on_exit(&self, ns: &str, id: &str, exec_id: &str, status: u32) {
        if exec_id.is_empty() || exec_id == id {
            let _ = self.set_status(ns, id, "stopped", Some((status, now())));
        }
    }

    /// At start: reconnect to every recorded shim still serving; for a shim that is
    /// gone, its binary's `delete` cleans up and its exit is recorded.
    pub fn recover(&self) -> Vec<String> {
        let rows: Vec<(String, String)> = self
            .store
            .db
            .tx(|tx| {
                let mut stmt = tx.prepare("SELECT namespace, container_id FROM tasks")?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                Ok(rows.collect::<std::result::Result<_, _>>()?)
            })
            .unwrap_or_default();
        let mut done = Vec::new();
        for (ns, id) in rows {
            let Ok(row) = self.row(&ns, &id) else {
                continue;
            };
            let boot = Bootstrap {
                address: row.address.clone(),
                version: row.version,
            };
            let alive = !row.address.is_empty()
                && skiff_protos::task_client::socket_path(&row.address).exists()
                && TaskClient::connect(&boot)
                    .ok()
                    .and_then(|c| {
                        let r: ttrpc::Result<api::ConnectResponse> = c.call(
                            "Connect",
                            &api::ConnectRequest {
                                id: id.clone(),
                                ..Default::default()
                            },
                            Duration::from_secs(5),
                        );
                        r.ok().map(|_| c)
                    })
                    .map(|c| {
                        self.shims
                            .lock()
                            .unwrap()
                            .insert((ns.clone(), id.clone()), Arc::new(c))
                    })
                    .is_some();
            if alive {
                let _ = crate::shim::follow_log(Path::new(&row.bundle), &id);
                let status = self.get(&ns, &id, "").map(|t| t.status).unwrap_or_default();
                done.push(format!("reconnected to the shim of {ns}/{id} ({status})"));
                continue;
            }
            if row.status == "stopped" {
                continue;
            }
            let bundle = PathBuf::from(&row.bundle);
            let (code, _) = self
                .launcher
                .delete(Path::new(&row.runtime_path), &ns, &id, &bundle)
                .unwrap_or((137, row.pid));
            let _ = self.set_status(&ns, &id, "stopped", Some((code, now())));
            let _ = self.store.db.tx(|tx| {
                tx.execute(
                    "UPDATE tasks SET address = '' WHERE namespace = ?1 AND container_id = ?2",
                    params![ns, id],
                )?;
                Ok(())
            });
            done.push(format!(
                "the shim of {ns}/{id} is gone: cleaned up, exit {code}"
            ));
        }
        done
    }
}

fn unmount_rootfs(bundle: &Path) {
    for m in crate::mount::mounts_under(bundle) {
        let _ = crate::mount::unmount(&m);
    }
}
