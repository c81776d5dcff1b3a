//! The Task service: what each RPC does to the containers the shim serves.

use crate::container::{Container, Processes};
use crate::error::{Result, ShimError};
use crate::events::{timestamp, EventPublisher};
use crate::options::{self, RuntimeSettings};
use crate::process::{Process, Status};
use crate::reaper::{Exit, Reaper};
use crate::stdio::ProcessIo;
use crate::{mount, validate};
use protobuf::well_known_types::any::Any;
use protobuf::well_known_types::empty::Empty;
use protobuf::{Message, MessageDyn, MessageField};
use runc_driver::{CreateOptions, DeleteOptions, KillOptions};
use skiff_protos::shim::*;
use skiff_protos::task::ProcessInfo;
use skiff_protos::task_events::*;
use skiff_protos::type_url;
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime};

/// How long an exit waits for the process's output to drain before it is reported
/// anyway (a process that leaves a child holding its stdout open).
const OUTPUT_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Exits of pids nobody has claimed yet, kept for a process whose runtime command has
/// not returned its pid.
const UNCLAIMED_LIMIT: usize = 256;

pub struct TaskService {
    namespace: String,
    containers: Mutex<HashMap<String, Arc<Container>>>,
    pids: Mutex<PidIndex>,
    publisher: EventPublisher,
    reaper: Arc<Reaper>,
    shutdown: Arc<ShutdownSignal>,
}

/// Who owns each live pid, and exits that arrived before their owner was known.
#[derive(Default)]
struct PidIndex {
    owners: HashMap<u32, (String, String)>,
    unclaimed: VecDeque<Exit>,
}

/// Set when the shim should exit; the main thread waits on it.
#[derive(Default)]
pub struct ShutdownSignal {
    requested: Mutex<bool>,
    cond: Condvar,
}

impl ShutdownSignal {
    pub fn request(&self) {
        *self.requested.lock().unwrap() = true;
        self.cond.notify_all();
    }

    pub fn wait(&self) {
        let mut r = self.requested.lock().unwrap();
        while !*r {
            r = self.cond.wait(r).unwrap();
        }
    }
}

impl TaskService {
    pub fn new(
        namespace: String,
        publisher: EventPublisher,
        reaper: Arc<Reaper>,
        shutdown: Arc<ShutdownSignal>,
    ) -> TaskService {
        TaskService {
            namespace,
            containers: Mutex::new(HashMap::new()),
            pids: Mutex::new(PidIndex::default()),
            publisher,
            reaper,
            shutdown,
        }
    }

    fn container(&self, id: &str) -> Result<Arc<Container>> {
        self.containers
            .lock()
            .unwrap()
            .get(id)
            .cloned()
            .ok_or_else(|| ShimError::NotFound(format!("container {id:?} not found")))
    }

    fn publish(&self, topic: &str, url: &str, event: &dyn MessageDyn) {
        self.publisher.publish(&self.namespace, topic, url, event);
    }

    /// Records the owner of a new pid; returns an exit that already happened to it.
    fn claim_pid(&self, pid: u32, container: &str, exec_id: &str) -> Option<Exit> {
        let mut index = self.pids.lock().unwrap();
        index
            .owners
            .insert(pid, (container.to_string(), exec_id.to_string()));
        let pos = index.unclaimed.iter().position(|e| e.pid == pid)?;
        index.unclaimed.remove(pos)
    }

    // ---- Create ----

    pub fn create(&self, req: CreateTaskRequest) -> Result<CreateTaskResponse> {
        validate::id("container id", &req.id).map_err(ShimError::InvalidArgument)?;
        validate::bundle(&req.bundle).map_err(ShimError::InvalidArgument)?;
        if !req.checkpoint.is_empty() {
            return Err(ShimError::Unimplemented(
                "restoring from a checkpoint is not supported yet".into(),
            ));
        }
        let opts = options::decode(req.options.as_ref())?;
        // Hold the map for the whole create so that two creates of one id cannot race.
        let mut containers = self.containers.lock().unwrap();
        if containers.contains_key(&req.id) {
            return Err(ShimError::AlreadyExists(format!(
                "container {:?} already exists",
                req.id
            )));
        }
        let bundle = PathBuf::from(&req.bundle);
        let settings = RuntimeSettings::from_options(&opts, &self.namespace);
        settings
            .save(&bundle)
            .map_err(|e| ShimError::internal("saving runtime options in the bundle", e))?;
        let runtime = settings.runtime(&bundle).with_monitor(self.reaper.clone());

        let rootfs = bundle.join("rootfs");
        let mounted = if req.rootfs.is_empty() {
            None
        } else {
            std::fs::create_dir_all(&rootfs)
                .map_err(|e| ShimError::internal(format!("creating {}", rootfs.display()), e))?;
            mount::mount_all(&req.rootfs, &rootfs)
                .map_err(|e| ShimError::internal("mounting the rootfs", e))?;
            Some(rootfs.clone())
        };
        let undo_mount = |e: ShimError| {
            if let Some(r) = &mounted {
                let _ = mount::unmount_all(r);
            }
            e
        };

        if req.terminal {
            return Err(undo_mount(ShimError::Unimplemented(
                "terminals are not supported yet".into(),
            )));
        }
        let owner = (opts.io_uid != 0 || opts.io_gid != 0).then_some((opts.io_uid, opts.io_gid));
        let (io, stdio) = ProcessIo::open(&req.stdin, &req.stdout, &req.stderr, owner)
            .map_err(|e| undo_mount(ShimError::internal("setting up stdio", e)))?;
        let pid_file = bundle.join("init.pid");
        let create = CreateOptions {
            pid_file: Some(pid_file.clone()),
            console_socket: None,
            no_pivot: opts.no_pivot_root,
            no_new_keyring: opts.no_new_keyring,
        };
        if let Err(e) = runtime.create(&req.id, &bundle, &create, stdio) {
            return Err(undo_mount(e.into()));
        }
        let pid = match read_pid(&pid_file) {
            Ok(pid) => pid,
            Err(e) => {
                let _ = runtime.delete(&req.id, &DeleteOptions { force: true });
                return Err(undo_mount(e));
            }
        };
        let container = Arc::new(Container {
            bundle: bundle.clone(),
            runtime,
            rootfs: mounted,
            processes: Mutex::new(Processes {
                init: Process::new(None, pid, req.terminal, io),
                execs: HashMap::new(),
            }),
            exited: Condvar::new(),
        });
        containers.insert(req.id.clone(), container.clone());
        drop(containers);

        let early_exit = self.claim_pid(pid, &req.id, "");
        self.publish(
            "/tasks/create",
            type_url::TASK_CREATE,
            &TaskCreate {
                container_id: req.id.clone(),
                bundle: req.bundle.clone(),
                rootfs: req.rootfs.clone(),
                io: MessageField::some(TaskIO {
                    stdin: req.stdin.clone(),
                    stdout: req.stdout.clone(),
                    stderr: req.stderr.clone(),
                    terminal: req.terminal,
                    ..Default::default()
                }),
                checkpoint: req.checkpoint.clone(),
                pid,
                ..Default::default()
            },
        );
        if let Some(exit) = early_exit {
            self.handle_exit(exit);
        }
        Ok(CreateTaskResponse {
            pid,
            ..Default::default()
        })
    }

    // ---- Start ----

    pub fn start(&self, req: StartRequest) -> Result<StartResponse> {
        let c = self.container(&req.id)?;
        // The lock is held across the runtime call: an exit that comes meanwhile is
        // handled after, so /tasks/exit never precedes /tasks/start.
        let mut procs = c.processes.lock().unwrap();
        let p = procs.get_mut(&req.exec_id)?;
        if p.status != Status::Created {
            return Err(ShimError::FailedPrecondition(format!(
                "{} of {:?} is {}: cannot start it",
                p.name(),
                req.id,
                p.status
            )));
        }
        if !req.exec_id.is_empty() {
            return Err(ShimError::Unimplemented("exec is not supported yet".into()));
        }
        c.runtime.start(&req.id)?;
        p.transition(Status::Running)?;
        let pid = p.pid;
        self.publish(
            "/tasks/start",
            type_url::TASK_START,
            &TaskStart {
                container_id: req.id.clone(),
                pid,
                ..Default::default()
            },
        );
        Ok(StartResponse {
            pid,
            ..Default::default()
        })
    }

    // ---- Exits ----

    /// Called for every exit the reaper does not route to a runtime command.
    pub fn handle_exit(&self, exit: Exit) {
        let owner = {
            let mut index = self.pids.lock().unwrap();
            match index.owners.remove(&exit.pid) {
                Some(owner) => owner,
                None => {
                    if index.unclaimed.len() >= UNCLAIMED_LIMIT {
                        index.unclaimed.pop_front();
                    }
                    index.unclaimed.push_back(exit);
                    return;
                }
            }
        };
        let (container_id, exec_id) = owner;
        let Ok(c) = self.container(&container_id) else {
            return;
        };
        // Let the output drain first, without holding the container: a user reading the
        // exit has then read everything the process wrote.
        let waiter = {
            let procs = c.processes.lock().unwrap();
            match procs.get(&exec_id) {
                Ok(p) if p.pid == exit.pid => p.io.as_ref().map(|io| io.output_waiter()),
                _ => return,
            }
        };
        if let Some(w) = waiter {
            if !w.wait(OUTPUT_DRAIN_TIMEOUT) {
                log::warn!(
                    "output of {container_id} {exec_id} still open {OUTPUT_DRAIN_TIMEOUT:?} after its exit"
                );
            }
        }
        let mut procs = c.processes.lock().unwrap();
        let Ok(p) = procs.get_mut(&exec_id) else {
            return;
        };
        if p.pid != exit.pid || p.status == Status::Deleted {
            return;
        }
        p.set_exited(exit);
        self.publish(
            "/tasks/exit",
            type_url::TASK_EXIT,
            &TaskExit {
                container_id: container_id.clone(),
                id: if exec_id.is_empty() {
                    container_id.clone()
                } else {
                    exec_id.clone()
                },
                pid: exit.pid,
                exit_status: exit.status,
                exited_at: MessageField::some(timestamp(exit.at)),
                ..Default::default()
            },
        );
        c.exited.notify_all();
    }

    // ---- Wait, State ----

    pub fn wait(&self, req: WaitRequest) -> Result<WaitResponse> {
        let c = self.container(&req.id)?;
        let mut procs = c.processes.lock().unwrap();
        loop {
            let p = procs.get(&req.exec_id)?;
            if let (Status::Stopped | Status::Deleted, Some(exit)) = (p.status, p.exit) {
                return Ok(WaitResponse {
                    exit_status: exit.status,
                    exited_at: MessageField::some(timestamp(exit.at)),
                    ..Default::default()
                });
            }
            procs = c.exited.wait(procs).unwrap();
        }
    }

    pub fn state(&self, req: StateRequest) -> Result<StateResponse> {
        let c = self.container(&req.id)?;
        let procs = c.processes.lock().unwrap();
        let p = procs.get(&req.exec_id)?;
        let io = p.io.as_ref();
        Ok(StateResponse {
            id: if req.exec_id.is_empty() {
                req.id.clone()
            } else {
                req.exec_id.clone()
            },
            bundle: c.bundle.to_string_lossy().into_owned(),
            pid: p.pid,
            status: p.status.wire().into(),
            stdin: io.map(|i| i.stdin_path.clone()).unwrap_or_default(),
            stdout: io.map(|i| i.stdout_path.clone()).unwrap_or_default(),
            stderr: io.map(|i| i.stderr_path.clone()).unwrap_or_default(),
            terminal: p.terminal,
            exit_status: p.exit.map(|e| e.status).unwrap_or_default(),
            exited_at: MessageField::from_option(p.exit.map(|e| timestamp(e.at))),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        })
    }

    // ---- Kill ----

    pub fn kill(&self, req: KillRequest) -> Result<Empty> {
        let c = self.container(&req.id)?;
        let procs = c.processes.lock().unwrap();
        let p = procs.get(&req.exec_id)?;
        p.ensure_signalable()?;
        if !req.exec_id.is_empty() {
            return Err(ShimError::Unimplemented("exec is not supported yet".into()));
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

    // ---- Delete ----

    pub fn delete(&self, req: DeleteRequest) -> Result<DeleteResponse> {
        let c = self.container(&req.id)?;
        if !req.exec_id.is_empty() {
            let procs = c.processes.lock().unwrap();
            procs.get(&req.exec_id)?;
            return Err(ShimError::Unimplemented("exec is not supported yet".into()));
        }
        let mut procs = c.processes.lock().unwrap();
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
                .is_some_and(|m| m.contains("does not exist") || m.contains("not exist"));
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

    // ---- Pids, CloseIO, Pause, Resume, Update ----

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

    pub fn update(&self, req: UpdateTaskRequest) -> Result<Empty> {
        let c = self.container(&req.id)?;
        let resources = req.resources.as_ref().ok_or_else(|| {
            ShimError::InvalidArgument("update request carries no resources".into())
        })?;
        c.runtime.update(&req.id, &resources.value)?;
        Ok(Empty::new())
    }

    // ---- Connect, Shutdown ----

    pub fn connect(&self, req: ConnectRequest) -> Result<ConnectResponse> {
        let task_pid = self
            .container(&req.id)
            .map(|c| c.processes.lock().unwrap().init.pid)
            .unwrap_or(0);
        Ok(ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..Default::default()
        })
    }

    pub fn shutdown(&self, req: ShutdownRequest) -> Result<Empty> {
        let containers = self.containers.lock().unwrap();
        if !containers.is_empty() && !req.now {
            // Other containers of the pod still need this shim.
            return Ok(Empty::new());
        }
        drop(containers);
        self.shutdown.request();
        Ok(Empty::new())
    }
}

fn read_pid(path: &Path) -> Result<u32> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ShimError::internal(format!("reading {}", path.display()), e))?;
    text.trim()
        .parse()
        .map_err(|_| ShimError::Internal(format!("{} holds {:?}, not a pid", path.display(), text)))
}
