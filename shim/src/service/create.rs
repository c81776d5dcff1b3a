//! Create: mount the rootfs, set up the init's streams, and have the runtime create
//! the container. Anything it set up is undone when a later step fails.

use super::{read_pid, TaskService};
use crate::container::{Container, Processes};
use crate::error::{Result, ShimError};
use crate::options::{self, RuntimeSettings};
use crate::process::Process;
use crate::stdio::{ProcessIo, StreamPaths};
use crate::{mount, validate};
use protobuf::MessageField;
use runc_driver::{ConsoleSocket, CreateOptions, DeleteOptions, Stdio3};
use skiff_protos::shim::{CreateTaskRequest, CreateTaskResponse};
use skiff_protos::task_events::{TaskCreate, TaskIO};
use skiff_protos::type_url;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

/// How long the runtime has to send a pty master once create or exec returned.
pub(super) const CONSOLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Unmounts the rootfs on drop unless disarmed: every early return cleans up.
struct MountGuard(Option<PathBuf>);

impl MountGuard {
    fn disarm(mut self) -> Option<PathBuf> {
        self.0.take()
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        if let Some(r) = &self.0 {
            let _ = mount::unmount_all(r);
        }
    }
}

impl TaskService {
    /// Everything about a Create request that can be checked without touching the
    /// system; returns the decoded runtime options.
    pub fn check_create(req: &CreateTaskRequest) -> Result<skiff_protos::options::Options> {
        validate::id("container id", &req.id).map_err(ShimError::InvalidArgument)?;
        validate::bundle(&req.bundle).map_err(ShimError::InvalidArgument)?;
        if !req.checkpoint.is_empty() {
            if req.terminal {
                return Err(ShimError::InvalidArgument(
                    "restoring a checkpoint with a terminal is not supported".into(),
                ));
            }
            validate::absolute_path("checkpoint", &req.checkpoint)
                .map_err(ShimError::InvalidArgument)?;
        }
        for (name, path) in [("stdout", &req.stdout), ("stderr", &req.stderr)] {
            crate::stdio::check_output(path)
                .map_err(|e| ShimError::InvalidArgument(format!("{name}: {e}")))?;
        }
        for m in &req.rootfs {
            if m.type_.is_empty() {
                return Err(ShimError::InvalidArgument(
                    "a rootfs mount has no type".into(),
                ));
            }
        }
        options::decode(req.options.as_ref())
    }

    pub fn create(&self, req: CreateTaskRequest) -> Result<CreateTaskResponse> {
        let opts = Self::check_create(&req)?;
        // Hold the map for the whole create so that two creates of one id cannot race.
        let mut containers = self.containers.lock().unwrap();
        if containers.contains_key(&req.id) {
            return Err(ShimError::AlreadyExists(format!(
                "container {:?} already exists",
                req.id
            )));
        }
        crate::attach_warmup::begin();
        let bundle = PathBuf::from(&req.bundle);
        let settings = RuntimeSettings::from_options(&opts, &self.namespace);
        settings
            .save(&bundle)
            .map_err(|e| ShimError::internal("saving runtime options in the bundle", e))?;
        let runtime = settings.runtime(&bundle, self.reaper.clone());

        let rootfs = bundle.join("rootfs");
        let guard = if req.rootfs.is_empty() {
            MountGuard(None)
        } else {
            std::fs::create_dir_all(&rootfs)
                .map_err(|e| ShimError::internal(format!("creating {}", rootfs.display()), e))?;
            mount::mount_all(&req.rootfs, &rootfs)
                .map_err(|e| ShimError::internal("mounting the rootfs", e))?;
            MountGuard(Some(rootfs))
        };

        let paths = StreamPaths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let pid_file = bundle.join("init.pid");
        let mut create = CreateOptions {
            pid_file: Some(pid_file.clone()),
            console_socket: None,
            no_pivot: opts.no_pivot_root,
            no_new_keyring: opts.no_new_keyring,
        };
        if !req.checkpoint.is_empty() {
            return self.create_for_restore(req, containers, bundle, runtime, guard, paths, &opts);
        }
        let io = if req.terminal {
            let console = ConsoleSocket::new(None)
                .map_err(|e| ShimError::internal("creating the console socket", e))?;
            create.console_socket = Some(console.path().to_path_buf());
            runtime.create(&req.id, &bundle, &create, Stdio3::default())?;
            let io = console
                .receive_master(CONSOLE_TIMEOUT)
                .and_then(|master| ProcessIo::terminal(paths, master, &self.pumps));
            match io {
                Ok(io) => io,
                Err(e) => {
                    let _ = runtime.delete(&req.id, &DeleteOptions { force: true });
                    return Err(ShimError::internal("setting up the terminal", e));
                }
            }
        } else {
            let owner = self.owner(&req.id, opts.io_uid, opts.io_gid);
            let (io, stdio) = ProcessIo::pipes(paths, &owner, &self.pumps)
                .map_err(|e| ShimError::internal("setting up stdio", e))?;
            runtime.create(&req.id, &bundle, &create, stdio)?;
            io
        };
        let pid = match read_pid(&pid_file) {
            Ok(pid) => pid,
            Err(e) => {
                let _ = runtime.delete(&req.id, &DeleteOptions { force: true });
                return Err(e);
            }
        };
        let cgroup = match skiff_cgroups::Cgroup::of_pid(pid) {
            Ok(cg) => Some(cg),
            Err(e) => {
                log::warn!("{}: no cgroup for stats and OOM events: {e}", req.id);
                None
            }
        };
        if let Some(cg) = &cgroup {
            self.oom.add(&req.id, cg.clone());
        }
        let container = Arc::new(Container {
            bundle: bundle.clone(),
            runtime,
            rootfs: guard.disarm(),
            io_owner: (opts.io_uid, opts.io_gid),
            cgroup: cgroup.map(OnceLock::from).unwrap_or_default(),
            processes: Mutex::new(Processes {
                init: Process::init(pid, io),
                execs: HashMap::new(),
            }),
            exited: Condvar::new(),
        });
        containers.insert(req.id.clone(), container);
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

    /// A container to be restored from a checkpoint at Start: its streams are ready, the
    /// runtime has not run yet.
    #[allow(clippy::too_many_arguments)]
    fn create_for_restore(
        &self,
        req: CreateTaskRequest,
        mut containers: std::sync::MutexGuard<'_, HashMap<String, Arc<Container>>>,
        bundle: PathBuf,
        runtime: Arc<dyn runc_driver::OciRuntime>,
        guard: MountGuard,
        paths: StreamPaths,
        opts: &skiff_protos::options::Options,
    ) -> Result<CreateTaskResponse> {
        let owner = self.owner(&req.id, opts.io_uid, opts.io_gid);
        let (io, stdio) = ProcessIo::pipes(paths, &owner, &self.pumps)
            .map_err(|e| ShimError::internal("setting up stdio", e))?;
        let mut init = Process::init(0, io);
        init.restore = Some(crate::process::Restore {
            image_path: req.checkpoint.clone(),
            work_path: (!opts.criu_work_path.is_empty()).then(|| opts.criu_work_path.clone()),
            stdio,
        });
        let container = Arc::new(Container {
            bundle,
            runtime,
            rootfs: guard.disarm(),
            io_owner: (opts.io_uid, opts.io_gid),
            cgroup: OnceLock::new(),
            processes: Mutex::new(Processes {
                init,
                execs: HashMap::new(),
            }),
            exited: Condvar::new(),
        });
        containers.insert(req.id.clone(), container);
        drop(containers);
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
                    terminal: false,
                    ..Default::default()
                }),
                checkpoint: req.checkpoint.clone(),
                ..Default::default()
            },
        );
        Ok(CreateTaskResponse::default())
    }

    pub(super) fn owner<'a>(
        &'a self,
        container_id: &'a str,
        uid: u32,
        gid: u32,
    ) -> crate::stdio::Owner<'a> {
        crate::stdio::Owner {
            container_id,
            namespace: &self.namespace,
            io_ids: (uid != 0 || gid != 0).then_some((uid, gid)),
        }
    }
}
