//! Each OciRuntime operation as libcontainer calls.

use crate::report::{describe, failed, NAME};
use crate::state_file::{self, KILL_PATIENCE};
use crate::{devices_v2, helper, hybrid, refusals};
use libcgroups::common::{CgroupConfig, CgroupManager, ControllerOpt};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::state::StateError;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::error::LibcontainerError;
use libcontainer::signal::Signal;
use libcontainer::syscall::syscall::SyscallType;
use skiff_oci_runtime::{
    CheckpointOptions, ContainerState, CreateOptions, DeleteOptions, DirectMonitor, Error,
    ExecOptions, KillOptions, OciRuntime, ProcessList, ProcessMonitor, Result, Stdio3,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// libcontainer over one state root (`root/<id>` per container).
#[derive(Clone)]
pub struct Libcontainer {
    root: PathBuf,
    refused: Option<String>,
    /// Starts and waits for the forked helpers, so that a reaping caller routes their
    /// exits back here.
    monitor: Arc<dyn ProcessMonitor>,
    systemd: bool,
}

impl std::fmt::Debug for Libcontainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Libcontainer")
            .field("root", &self.root)
            .field("refused", &self.refused)
            .field("systemd", &self.systemd)
            .finish()
    }
}

impl Libcontainer {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Libcontainer {
            root: root.into(),
            refused: None,
            monitor: Arc::new(DirectMonitor),
            systemd: false,
        }
    }

    /// Has `monitor` start and wait for the helpers (the shim's reaper, in the shim).
    pub fn with_monitor(mut self, monitor: Arc<dyn ProcessMonitor>) -> Self {
        self.monitor = monitor;
        self
    }

    /// Creates containers with libcontainer's systemd cgroup manager (the runtime option
    /// SystemdCgroup): the cgroupsPath `SLICE:PREFIX:NAME` becomes the transient unit
    /// `PREFIX-NAME.scope` in SLICE, made over D-Bus. Later operations read the choice
    /// from the container's saved state.
    pub fn with_systemd(mut self, systemd: bool) -> Self {
        self.systemd = systemd;
        self
    }

    /// Makes `create` fail as unsupported, with `reason`: for settings the caller was
    /// given that this driver cannot honour.
    pub fn refusing(mut self, reason: impl Into<String>) -> Self {
        self.refused = Some(reason.into());
        self
    }

    /// What a created or exec'd process shares: the state root, the executor, the pid
    /// file, the console socket and the streams.
    fn builder(
        &self,
        id: &str,
        command: &'static str,
        pid_file: Option<&PathBuf>,
        console_socket: Option<&PathBuf>,
        stdio: Stdio3,
    ) -> std::result::Result<ContainerBuilder, String> {
        std::fs::create_dir_all(&self.root)
            .map_err(|e| format!("creating the state root {}: {e}", self.root.display()))?;
        let mut b = ContainerBuilder::new(id.to_string(), SyscallType::default())
            .with_executor(crate::executor::ProcessExecutor::new())
            .with_root_path(&self.root)
            .map_err(|e| format!("{command}: {}", describe(&e)))?
            .with_pid_file(pid_file)
            .map_err(|e| describe(&e))?
            .with_console_socket(console_socket);
        if let Some(fd) = stdio.stdin {
            b = b.with_stdin(fd);
        }
        if let Some(fd) = stdio.stdout {
            b = b.with_stdout(fd);
        }
        if let Some(fd) = stdio.stderr {
            b = b.with_stderr(fd);
        }
        Ok(b)
    }

    /// The container's saved state, refreshed from its init process.
    fn load(&self, id: &str, command: &'static str) -> Result<Container> {
        helper::ensure_cwd();
        let dir = self.root.join(id);
        if !dir.join("state.json").exists() {
            return Err(Error::NotFound {
                runtime: NAME.into(),
                command,
                id: id.to_string(),
            });
        }
        let mut c = state_file::load_whole(|| Container::load(dir.clone()), is_torn)
            .map_err(|e| lib_error(command, id, e))?;
        c.refresh_status().map_err(|e| lib_error(command, id, e))?;
        Ok(c)
    }

    /// The turn to save `id`'s state (state_file): taken before the load, so that
    /// nothing else in this process saves between this operation's load and its save.
    fn writer(&self, id: &str, patience: Option<std::time::Duration>) -> state_file::Writer {
        state_file::writer(&self.root.join(id), patience)
    }

    /// Creates the container from this process (the forked helper), its device rules
    /// attached on a cgroup v2 host ([`devices_v2`]).
    fn create_here(
        &self,
        id: &str,
        bundle: &Path,
        opts: &CreateOptions,
        stdio: Stdio3,
        device_rules: &serde_json::Value,
    ) -> std::result::Result<(), String> {
        let mut container = self
            .builder(
                id,
                "create",
                opts.pid_file.as_ref(),
                opts.console_socket.as_ref(),
                stdio,
            )?
            .validate_id()
            .map_err(|e| describe(&e))?
            .as_init(bundle)
            .with_systemd(self.systemd)
            .with_detach(true)
            .with_no_pivot(opts.no_pivot)
            .build()
            .map_err(|e| describe(&e))?;
        let pid = container.pid().map_or(0, |p| p.as_raw());
        if let Some(cgroup) = devices_v2::cgroup_of(pid) {
            if let Err(e) = devices_v2::apply(&cgroup, device_rules) {
                // Never a container without its device rules.
                let _ = container.delete(true);
                return Err(e);
            }
        }
        Ok(())
    }

    /// The container's groups in the cgroup hierarchies libcgroups leaves alone
    /// ([`hybrid`]): none with the systemd cgroup manager.
    fn unmanaged_groups(&self, c: &Container) -> Vec<PathBuf> {
        match c.spec() {
            Ok(config) if !c.systemd() => hybrid::groups(&config.cgroup_path),
            _ => Vec::new(),
        }
    }

    fn cgroup_manager(
        &self,
        c: &Container,
        command: &'static str,
    ) -> Result<libcgroups::common::AnyCgroupManager> {
        let config = c.spec().map_err(|e| lib_error(command, c.id(), e))?;
        libcgroups::common::create_cgroup_manager(CgroupConfig {
            cgroup_path: config.cgroup_path,
            systemd_cgroup: c.systemd(),
            container_name: c.id().to_string(),
        })
        .map_err(|e| {
            failed(
                command,
                format!("the cgroup of {:?}: {}", c.id(), describe(&e)),
            )
        })
    }
}

/// libcontainer's error, by kind: a container whose process has ended is NotRunning, as
/// runc-driver says it of runc.
/// A state file caught between libcontainer's truncation and its write.
fn is_torn(e: &LibcontainerError) -> bool {
    matches!(
        e,
        LibcontainerError::State(StateError::ParseStateFile { .. })
    )
}

fn lib_error(command: &'static str, id: &str, e: LibcontainerError) -> Error {
    match e {
        LibcontainerError::IncorrectStatus(ContainerStatus::Stopped) => Error::NotRunning {
            runtime: NAME.into(),
            command,
            id: id.to_string(),
            message: format!("container {id:?} is not running"),
        },
        LibcontainerError::IncorrectStatus(other) => failed(
            command,
            format!("container {id:?} is {}", other.to_string().to_lowercase()),
        ),
        other => failed(command, describe(&other)),
    }
}

impl OciRuntime for Libcontainer {
    fn create(&self, id: &str, bundle: &Path, opts: &CreateOptions, stdio: Stdio3) -> Result<()> {
        if let Some(reason) = &self.refused {
            return Err(unsupported("create", reason));
        }
        // What cannot be read is left to libcontainer to report in its words.
        let spec = read_json(&bundle.join("config.json")).unwrap_or_default();
        refusals::check_container(&spec).map_err(|r| unsupported("create", &r))?;
        let groups = match spec["linux"]["cgroupsPath"].as_str() {
            Some(path) if !self.systemd => hybrid::groups(Path::new(path)),
            _ => Vec::new(),
        };
        let device_rules = &spec["linux"]["resources"]["devices"];
        devices_v2::check(device_rules).map_err(|r| unsupported("create", &r))?;
        let created = helper::in_child("create", &*self.monitor, || {
            hybrid::join(&groups).map_err(|e| e.to_string())?;
            self.create_here(id, bundle, opts, stdio, device_rules)
        });
        if created.is_err() {
            hybrid::remove(&groups);
        }
        created
    }

    fn start(&self, id: &str) -> Result<()> {
        let _turn = self.writer(id, None);
        let mut c = self.load(id, "start")?;
        c.start().map_err(|e| lib_error("start", id, e))
    }

    fn exec(&self, id: &str, opts: &ExecOptions, stdio: Stdio3) -> Result<()> {
        // Refused here, in the caller, with the words runc uses, before any fork.
        let c = self.load(id, "exec")?;
        if !c.can_exec() {
            return Err(lib_error(
                "exec",
                id,
                LibcontainerError::IncorrectStatus(c.status()),
            ));
        }
        let process = read_json(&opts.process_file).unwrap_or_default();
        refusals::check_process(&process).map_err(|r| unsupported("exec", &r))?;
        let groups = self.unmanaged_groups(&c);
        helper::in_child("exec", &*self.monitor, || {
            hybrid::join(&groups).map_err(|e| e.to_string())?;
            self.builder(
                id,
                "exec",
                opts.pid_file.as_ref(),
                opts.console_socket.as_ref(),
                stdio,
            )?
            .as_tenant()
            .with_process(Some(&opts.process_file))
            .with_detach(true)
            .build()
            .map(drop)
            .map_err(|e| describe(&e))
        })
    }

    fn kill(&self, id: &str, signal: u32, opts: &KillOptions) -> Result<()> {
        let _turn = self.writer(id, Some(KILL_PATIENCE));
        let mut c = self.load(id, "kill")?;
        let sig = Signal::try_from(signal as i32)
            .map_err(|e| failed("kill", format!("signal {signal}: {}", describe(&e))))?;
        c.kill(sig, opts.all).map_err(|e| lib_error("kill", id, e))
    }

    fn delete(&self, id: &str, opts: &DeleteOptions) -> Result<()> {
        let _turn = self.writer(id, None);
        let mut c = self.load(id, "delete")?;
        let groups = self.unmanaged_groups(&c);
        c.delete(opts.force)
            .map_err(|e| lib_error("delete", id, e))?;
        hybrid::remove(&groups);
        Ok(())
    }

    fn pause(&self, id: &str) -> Result<()> {
        let _turn = self.writer(id, None);
        let mut c = self.load(id, "pause")?;
        c.pause().map_err(|e| lib_error("pause", id, e))
    }

    fn resume(&self, id: &str) -> Result<()> {
        let _turn = self.writer(id, None);
        let mut c = self.load(id, "resume")?;
        c.resume().map_err(|e| lib_error("resume", id, e))
    }

    fn state(&self, id: &str) -> Result<ContainerState> {
        let c = self.load(id, "state")?;
        Ok(ContainerState {
            id: id.to_string(),
            pid: c.pid().map_or(0, |p| p.as_raw() as u32),
            status: c.status().to_string().to_lowercase(),
            bundle: c.bundle().to_string_lossy().into_owned(),
            rootfs: String::new(),
            annotations: None,
        })
    }

    fn ps(&self, id: &str) -> Result<ProcessList> {
        let c = self.load(id, "ps")?;
        let pids = self
            .cgroup_manager(&c, "ps")?
            .get_all_pids()
            .map_err(|e| failed("ps", describe(&e)))?;
        Ok(pids.into_iter().map(|p| p.as_raw() as u32).collect())
    }

    fn update(&self, id: &str, resources_json: &[u8]) -> Result<()> {
        let c = self.load(id, "update")?;
        let resources: oci_spec::runtime::LinuxResources =
            serde_json::from_slice(resources_json)
                .map_err(|e| failed("update", format!("the resources document: {e}")))?;
        self.cgroup_manager(&c, "update")?
            .apply(&ControllerOpt {
                resources: &resources,
                disable_oom_killer: false,
                oom_score_adj: None,
                freezer_state: None,
            })
            .map_err(|e| failed("update", describe(&e)))
    }

    fn features(&self) -> Result<Vec<u8>> {
        Ok(crate::features::document())
    }

    fn checkpoint(&self, _id: &str, _opts: &CheckpointOptions) -> Result<()> {
        Err(unsupported("checkpoint", NO_CRIU))
    }

    fn restore(
        &self,
        _id: &str,
        _bundle: &Path,
        _opts: &CheckpointOptions,
        _create: &CreateOptions,
        _stdio: Stdio3,
    ) -> Result<()> {
        Err(unsupported("restore", NO_CRIU))
    }
}

/// A JSON document the caller wrote (config.json, process.json).
fn read_json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

const NO_CRIU: &str = "this build of the libcontainer driver has no CRIU support; use the \
                       runc shim (io.containerd.skiff.v2) to checkpoint and restore";

fn unsupported(command: &'static str, reason: &str) -> Error {
    Error::Unsupported {
        runtime: NAME.into(),
        command,
        reason: reason.into(),
    }
}
