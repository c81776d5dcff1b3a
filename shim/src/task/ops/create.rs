//! Create: off the loop, mount the rootfs, set up the init's streams and have the runtime
//! create the container (anything set up is undone when a later step fails); then, on
//! the loop, the container joins the service. Its id is taken from the moment the
//! request is accepted, so a second Create of it fails at once.

use crate::options::driver::Driver;
use crate::options::{self, RuntimeSettings};
use crate::stdio::{Owner, ProcessIo, Pumps, StreamPaths};
use crate::sys::mount;
use crate::sys::procfs::Moment;
use crate::sys::reaper::Reaper;
use crate::task::container::{Container, Parts};
use crate::task::error::{Result, ShimError};
use crate::task::job::{planned, Order, Plan, Reply};
use crate::task::process::{Process, Restore};
use crate::task::streams::{read_pid, start_with_streams};
use crate::task::{bundle, validate, TaskService};
use skiff_oci_runtime::{CreateOptions, DeleteOptions, OciRuntime};
use skiff_protos::options::Options;
use skiff_protos::shim::{CreateTaskRequest, CreateTaskResponse};
use std::path::PathBuf;
use std::sync::Arc;

impl TaskService {
    pub fn create(&self, req: CreateTaskRequest) -> Reply<CreateTaskResponse> {
        let plan = match self.plan_create(req) {
            Ok(plan) => plan,
            Err(e) => return Reply::Now(Err(e)),
        };
        let order = Order::InTurn(plan.req.id.clone());
        planned(order, plan, TaskService::created)
    }

    /// Everything about a Create request that can be checked without touching the
    /// system; returns the decoded runtime options.
    pub fn check_create(req: &CreateTaskRequest) -> Result<Options> {
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
        if req.rootfs.iter().any(|m| m.type_.is_empty()) {
            return Err(ShimError::InvalidArgument(
                "a rootfs mount has no type".into(),
            ));
        }
        mount::check_all(&req.rootfs)
            .map_err(|e| ShimError::InvalidArgument(format!("rootfs: {e}")))?;
        Ok(options::decode(req.options.as_ref())?)
    }

    fn plan_create(&self, req: CreateTaskRequest) -> Result<CreatePlan> {
        let opts = Self::check_create(&req)?;
        self.reserve(&req.id)?;
        let settings = self.driver.settings(&opts, &self.namespace);
        Ok(CreatePlan {
            req,
            opts,
            settings,
            driver: self.driver,
            namespace: self.namespace.clone(),
            pumps: self.pumps.clone(),
            reaper: self.reaper.clone(),
        })
    }

    /// Takes `id` for a Create in flight.
    fn reserve(&self, id: &str) -> Result<()> {
        let containers = self.containers.lock().unwrap();
        let mut creating = self.creating.lock().unwrap();
        if containers.contains_key(id) || !creating.insert(id.to_string()) {
            return Err(ShimError::AlreadyExists(format!(
                "container {id:?} already exists"
            )));
        }
        Ok(())
    }

    /// On the loop, when the runtime has created the container (or failed to).
    fn created(&self, (id, built): (String, Result<Built>)) -> Result<CreateTaskResponse> {
        self.creating.lock().unwrap().remove(&id);
        let built = built?;
        let pid = built.parts.init.pid();
        let container = Arc::new(Container::new(built.parts));
        if let Some(cg) = container.cgroup() {
            self.oom.add(&id, cg.clone());
        }
        self.containers
            .lock()
            .unwrap()
            .insert(id.clone(), container);
        self.announce_create(&built.req, pid);
        if pid != 0 {
            self.claim(pid, &id, "", built.since);
        }
        Ok(CreateTaskResponse {
            pid,
            ..Default::default()
        })
    }
}

/// What a Create does off the loop, and everything it needs.
struct CreatePlan {
    req: CreateTaskRequest,
    opts: Options,
    settings: RuntimeSettings,
    driver: &'static Driver,
    namespace: String,
    pumps: Arc<Pumps>,
    reaper: Arc<Reaper>,
}

/// A container the runtime created (or one to restore at Start).
struct Built {
    req: CreateTaskRequest,
    parts: Parts,
    /// When the runtime command began: the init's exit cannot come before.
    since: Moment,
}

impl Plan for CreatePlan {
    type Done = (String, Result<Built>);

    fn run(self) -> (String, Result<Built>) {
        crate::sys::attach_warmup::begin();
        let id = self.req.id.clone();
        (id, self.build())
    }

    /// The id is free again: a Create that never ran took nothing else.
    fn cancel(self, service: &TaskService) {
        service.creating.lock().unwrap().remove(&self.req.id);
    }
}

impl CreatePlan {
    fn build(self) -> Result<Built> {
        let bundle = PathBuf::from(&self.req.bundle);
        self.settings
            .save(&bundle)
            .map_err(|e| ShimError::internal("saving runtime options in the bundle", e))?;
        let runtime = self
            .driver
            .runtime(&self.settings, &bundle, self.reaper.clone());
        let rootfs = RootfsGuard::mount(&self.req, &bundle)?;
        let since = Moment::now();
        let (init, runtime) = if self.req.checkpoint.is_empty() {
            (self.create_init(&runtime, &bundle)?, runtime)
        } else {
            (self.restorable_init()?, runtime)
        };
        Ok(Built {
            parts: Parts {
                id: self.req.id.clone(),
                cgroup: cgroup_of(&self.req.id, init.pid()),
                shares_pid_namespace: bundle::shares_pid_namespace(&bundle),
                bundle,
                runtime,
                rootfs: rootfs.keep(),
                io_owner: self.io_owner(),
                init,
            },
            req: self.req,
            since,
        })
    }

    /// `runtime create`, with the init's streams; the runtime's container is deleted
    /// again if what follows fails.
    fn create_init(
        &self,
        runtime: &Arc<dyn OciRuntime>,
        bundle: &std::path::Path,
    ) -> Result<Process> {
        let id = &self.req.id;
        let pid_file = bundle.join("init.pid");
        let owner = self.owner();
        let created = start_with_streams(
            self.paths(),
            &owner,
            &self.pumps,
            "the init",
            |stdio, console| {
                let opts = CreateOptions {
                    pid_file: Some(pid_file.clone()),
                    console_socket: console.map(Into::into),
                    no_pivot: self.opts.no_pivot_root,
                    no_new_keyring: self.opts.no_new_keyring,
                };
                Ok(runtime.create(id, bundle, &opts, stdio)?)
            },
        )
        .and_then(|((), io)| Ok(Process::init(read_pid(&pid_file)?, io)));
        if created.is_err() {
            let _ = runtime.delete(id, &DeleteOptions { force: true });
        }
        created
    }

    /// An init restored from a checkpoint at Start: its streams are ready, the runtime
    /// has not run yet.
    fn restorable_init(&self) -> Result<Process> {
        let (io, stdio) = ProcessIo::pipes(self.paths(), &self.owner(), &self.pumps)
            .map_err(|e| ShimError::internal("setting up stdio", e))?;
        let restore = Restore {
            image_path: self.req.checkpoint.clone(),
            work_path: Some(self.opts.criu_work_path.clone()).filter(|p| !p.is_empty()),
            stdio,
        };
        Ok(Process::restoring(io, restore))
    }

    fn paths(&self) -> StreamPaths {
        StreamPaths {
            stdin: self.req.stdin.clone(),
            stdout: self.req.stdout.clone(),
            stderr: self.req.stderr.clone(),
            terminal: self.req.terminal,
        }
    }

    fn io_owner(&self) -> Option<(u32, u32)> {
        let (uid, gid) = (self.opts.io_uid, self.opts.io_gid);
        (uid != 0 || gid != 0).then_some((uid, gid))
    }

    fn owner(&self) -> Owner<'_> {
        Owner {
            container_id: &self.req.id,
            namespace: &self.namespace,
            io_ids: self.io_owner(),
        }
    }
}

/// The container's cgroup, for stats and OOM events; none is no error.
pub(crate) fn cgroup_of(id: &str, pid: u32) -> Option<skiff_cgroups::Cgroup> {
    if pid == 0 {
        return None;
    }
    skiff_cgroups::Cgroup::of_pid(pid)
        .map_err(|e| log::warn!("{id}: no cgroup for stats and OOM events: {e}"))
        .ok()
}

/// The rootfs a Create mounted: unmounted again on drop unless kept.
struct RootfsGuard(Option<PathBuf>);

impl RootfsGuard {
    fn mount(req: &CreateTaskRequest, bundle: &std::path::Path) -> Result<RootfsGuard> {
        if req.rootfs.is_empty() {
            return Ok(RootfsGuard(None));
        }
        let rootfs = bundle.join("rootfs");
        std::fs::create_dir_all(&rootfs)
            .map_err(|e| ShimError::internal(format!("creating {}", rootfs.display()), e))?;
        mount::mount_all(&req.rootfs, &rootfs)
            .map_err(|e| ShimError::internal("mounting the rootfs", e))?;
        Ok(RootfsGuard(Some(rootfs)))
    }

    fn keep(mut self) -> Option<PathBuf> {
        self.0.take()
    }
}

impl Drop for RootfsGuard {
    fn drop(&mut self) {
        if let Some(r) = &self.0 {
            let _ = mount::unmount_all(r);
        }
    }
}
