//! What a scenario works with: containers in bundles of their own, launched through the
//! shim binary under test, their stdio, the events the shim sent; and, when the scenario
//! ends, the cleanup a manager does and the check that the shim left nothing behind.

use super::api::{RpcError, TaskApi, Timings};
use super::events::{Event, EventLog};
use super::launch::{socket_path, Manager, ShimLog, StartProtocol};
use super::stdio::{open_stdin, Capture};
use crate::containerd::{cgroups_of, remove_cgroup_tree};
use crate::proc;
use protobuf::well_known_types::any::Any;
use protobuf::{Message, MessageField};
use skiff_protos::mount::Mount;
use skiff_protos::shim::*;
use skiff_test_support::bundle::{busybox_rootfs, oci_spec, TempDir};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use ttrpc::Code;

/// Why a scenario did not pass.
#[derive(Debug, Clone)]
pub enum Verdict {
    Fail(String),
    Skip(String),
}

pub type Outcome<T = ()> = Result<T, Verdict>;

impl From<RpcError> for Verdict {
    fn from(e: RpcError) -> Verdict {
        Verdict::Fail(e.to_string())
    }
}

impl From<String> for Verdict {
    fn from(e: String) -> Verdict {
        Verdict::Fail(e)
    }
}

/// Fails the scenario with a formatted reason unless the condition holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($reason:tt)+) => {
        if !$cond {
            return Err($crate::shimtest::ctx::Verdict::Fail(format!($($reason)+)));
        }
    };
}

/// The call must fail with `code`.
pub fn expect_code<T: std::fmt::Debug>(r: Result<T, RpcError>, code: Code) -> Outcome<String> {
    match r {
        Ok(v) => Err(Verdict::Fail(format!(
            "expected {code:?}, the call succeeded: {v:?}"
        ))),
        Err(e) if e.code == Some(code) => Ok(e.message),
        Err(e) => Err(Verdict::Fail(format!("expected {code:?}, got {e}"))),
    }
}

/// The call must fail, with any status code (shims differ in which they choose).
pub fn expect_error<T: std::fmt::Debug>(r: Result<T, RpcError>) -> Outcome<RpcError> {
    match r {
        Ok(v) => Err(Verdict::Fail(format!(
            "expected an error, the call succeeded: {v:?}"
        ))),
        Err(e) if e.code.is_some() => Ok(e),
        Err(e) => Err(Verdict::Fail(format!("expected an error status, got {e}"))),
    }
}

/// The type URL containerd gives the JSON of an OCI runtime-spec Process or resources.
pub const SPEC_PROCESS_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";
pub const SPEC_RESOURCES_URL: &str =
    "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";

/// A process to run: the container's init or an exec.
#[derive(Clone)]
pub struct Setup {
    pub id: String,
    pub args: Vec<String>,
    pub terminal: bool,
    pub stdin: bool,
    /// Without stdio the process gets no FIFOs at all (`ctr --null-io`).
    pub stdio: bool,
    pub memory_limit: Option<i64>,
    /// The pod this container belongs to (`io.kubernetes.cri.sandbox-id`).
    pub sandbox: Option<String>,
    /// Runtime options as packed for the wire, sent on `start`'s stdin and in Create, as
    /// containerd does.
    pub options: Option<Any>,
    /// What an exec's process spec says of a terminal, when it is not what the request
    /// says (a client may set only the request's).
    pub spec_terminal: Option<bool>,
}

/// `sh -c SCRIPT` as process `id`, with stdout and stderr.
pub fn sh(id: &str, script: &str) -> Setup {
    cmd(id, &["sh", "-c", script])
}

pub fn cmd(id: &str, args: &[&str]) -> Setup {
    Setup {
        id: id.to_string(),
        args: args.iter().map(|s| s.to_string()).collect(),
        terminal: false,
        stdin: false,
        stdio: true,
        memory_limit: None,
        sandbox: None,
        options: None,
        spec_terminal: None,
    }
}

impl Setup {
    pub fn terminal(mut self) -> Setup {
        self.terminal = true;
        self
    }
    pub fn stdin(mut self) -> Setup {
        self.stdin = true;
        self
    }
    pub fn no_stdio(mut self) -> Setup {
        self.stdio = false;
        self
    }
    pub fn memory(mut self, bytes: i64) -> Setup {
        self.memory_limit = Some(bytes);
        self
    }
    pub fn in_pod(mut self, sandbox: &str) -> Setup {
        self.sandbox = Some(sandbox.to_string());
        self
    }
    pub fn options(mut self, options: skiff_protos::options::Options) -> Setup {
        self.options = Some(options_any(&options));
        self
    }
    pub fn spec_terminal(mut self, terminal: bool) -> Setup {
        self.spec_terminal = Some(terminal);
        self
    }
    /// Options of any type, as a client other than containerd's runc path sends them.
    pub fn raw_options(mut self, options: Any) -> Setup {
        self.options = Some(options);
        self
    }
}

/// A process the scenario drives: a container's init (empty `exec_id`) or an exec.
pub struct Process {
    pub container_id: String,
    pub exec_id: String,
    pub api: Arc<TaskApi>,
    pub pid: u32,
    pub bundle: PathBuf,
    pub stdout: Option<Capture>,
    pub stderr: Option<Capture>,
    pub stdin_path: Option<PathBuf>,
    pub stdin: Option<File>,
    /// Index of the shim serving it, in launch order.
    pub shim: usize,
}

impl Process {
    pub fn start(&mut self) -> Outcome<u32> {
        let r = self.api.start(&StartRequest {
            id: self.container_id.clone(),
            exec_id: self.exec_id.clone(),
            ..Default::default()
        })?;
        self.pid = r.pid;
        Ok(r.pid)
    }

    /// The exit status Wait reports.
    pub fn wait(&self) -> Outcome<u32> {
        Ok(self.api.wait(&self.wait_request())?.exit_status)
    }

    pub fn wait_request(&self) -> WaitRequest {
        WaitRequest {
            id: self.container_id.clone(),
            exec_id: self.exec_id.clone(),
            ..Default::default()
        }
    }

    pub fn kill(&self, signal: u32) -> Result<(), RpcError> {
        self.api.kill(&KillRequest {
            id: self.container_id.clone(),
            exec_id: self.exec_id.clone(),
            signal,
            ..Default::default()
        })
    }

    pub fn kill_all(&self, signal: u32) -> Result<(), RpcError> {
        self.api.kill(&KillRequest {
            id: self.container_id.clone(),
            signal,
            all: true,
            ..Default::default()
        })
    }

    pub fn state(&self) -> Result<StateResponse, RpcError> {
        self.api.state(&StateRequest {
            id: self.container_id.clone(),
            exec_id: self.exec_id.clone(),
            ..Default::default()
        })
    }

    pub fn delete(&self) -> Result<DeleteResponse, RpcError> {
        self.api.delete(&DeleteRequest {
            id: self.container_id.clone(),
            exec_id: self.exec_id.clone(),
            ..Default::default()
        })
    }

    pub fn pids(&self) -> Result<Vec<u32>, RpcError> {
        let r = self.api.pids(&PidsRequest {
            id: self.container_id.clone(),
            ..Default::default()
        })?;
        Ok(r.processes.iter().map(|p| p.pid).collect())
    }

    pub fn resize(&self, width: u32, height: u32) -> Result<(), RpcError> {
        self.api.resize_pty(&ResizePtyRequest {
            id: self.container_id.clone(),
            exec_id: self.exec_id.clone(),
            width,
            height,
            ..Default::default()
        })
    }

    /// Closes the manager's end of stdin and tells the shim, as `ctr` does at end of input.
    pub fn close_stdin(&mut self) -> Result<(), RpcError> {
        self.stdin.take();
        self.api.close_io(&CloseIORequest {
            id: self.container_id.clone(),
            exec_id: self.exec_id.clone(),
            stdin: true,
            ..Default::default()
        })
    }

    /// Closes the manager's end of stdin without telling the shim: a writer that goes
    /// away (containerd restarting, a client detaching) and may come back.
    pub fn drop_stdin_writer(&mut self) {
        self.stdin.take();
    }

    /// Writes to stdin, opening the FIFO first if need be: shims open their end at
    /// Create or at Start, and containerd's writer waits for either.
    pub fn write_stdin(&mut self, data: &[u8]) -> Outcome {
        use std::io::Write;
        if self.stdin.is_none() {
            let path = self
                .stdin_path
                .as_ref()
                .ok_or_else(|| Verdict::Fail("the process has no stdin".into()))?;
            let f = open_stdin(path, Duration::from_secs(5))
                .map_err(|e| Verdict::Fail(format!("the shim never opened stdin: {e}")))?;
            self.stdin = Some(f);
        }
        let f = self.stdin.as_mut().expect("opened above");
        f.write_all(data)
            .map_err(|e| Verdict::Fail(format!("writing stdin: {e}")))
    }

    /// All of stdout once the shim closed it.
    pub fn output(&self) -> Outcome<String> {
        read_all(self.stdout.as_ref(), "stdout")
    }

    pub fn errors(&self) -> Outcome<String> {
        read_all(self.stderr.as_ref(), "stderr")
    }

    /// Waits for the status State reports.
    pub fn wait_status(&self, status: skiff_protos::task::Status) -> Outcome<StateResponse> {
        let deadline = Instant::now() + super::patience(Duration::from_secs(10));
        loop {
            let s = self.state()?;
            if s.status.enum_value() == Ok(status) {
                return Ok(s);
            }
            if Instant::now() > deadline {
                return Err(Verdict::Fail(format!(
                    "State stayed {:?}, expected {status:?}",
                    s.status
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn read_all(capture: Option<&Capture>, name: &str) -> Outcome<String> {
    let c = capture.ok_or_else(|| Verdict::Fail(format!("the process has no {name}")))?;
    match c.wait_eof(Duration::from_secs(10)) {
        Some(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        None => Err(Verdict::Fail(format!(
            "{name} was not closed within 10 s; received so far: {:?}",
            c.text()
        ))),
    }
}

struct Shim {
    address: String,
    api: Arc<TaskApi>,
    pid: u32,
}

/// One bundle the scenario made, and the container in it.
struct Bundle {
    id: String,
    path: PathBuf,
}

/// The shim binary a run tests, and where its figures go.
pub struct Target {
    pub label: String,
    pub path: PathBuf,
    /// Where the shim keeps container state without a Root option (runc's root, or
    /// another runtime's): checked for leftovers after each scenario.
    pub state_root: PathBuf,
    /// How `start` is spoken to: as containerd up to 2.2 does, or 2.3's bootstrap.
    pub protocol: StartProtocol,
    pub timings: Timings,
}

pub struct Ctx<'r> {
    pub target: &'r Target,
    manager: &'r Manager,
    events: &'r EventLog,
    pub ns: String,
    pub dir: TempDir,
    shims: Vec<Shim>,
    logs: Vec<ShimLog>,
    bundles: Vec<Bundle>,
    captures: Vec<Capture>,
    pids: Vec<u32>,
    fifo_seq: usize,
}

impl<'r> Ctx<'r> {
    pub fn new(
        target: &'r Target,
        manager: &'r Manager,
        events: &'r EventLog,
        ns: String,
    ) -> Result<Ctx<'r>, String> {
        let dir = TempDir::new(&ns).map_err(|e| format!("temporary directory: {e}"))?;
        Ok(Ctx {
            target,
            manager,
            events,
            ns,
            dir,
            shims: Vec::new(),
            logs: Vec::new(),
            bundles: Vec::new(),
            captures: Vec::new(),
            pids: Vec::new(),
            fifo_seq: 0,
        })
    }

    /// A bundle for `setup`: config.json, an empty `rootfs` to mount onto, and the
    /// busybox tree the Create request will bind there (as a snapshotter's mounts).
    pub fn bundle(&mut self, setup: &Setup) -> Outcome<PathBuf> {
        let fail = |what: &str, e: std::io::Error| Verdict::Fail(format!("{what}: {e}"));
        let path = self.dir.path().join("bundles").join(&setup.id);
        std::fs::create_dir_all(path.join("rootfs")).map_err(|e| fail("bundle", e))?;
        // containerd links a per-container work directory into every bundle as `work`;
        // the Go shim checkpoints into it (CRIU's work files) and fails without it.
        let work = self.dir.path().join("work").join(&setup.id);
        std::fs::create_dir_all(&work).map_err(|e| fail("work dir", e))?;
        match std::os::unix::fs::symlink(&work, path.join("work")) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(fail("work link", e))
            }
            _ => {}
        }
        let source = self.rootfs_source(&setup.id);
        busybox_rootfs(&source).map_err(|e| fail("rootfs", e))?;
        let args: Vec<&str> = setup.args.iter().map(String::as_str).collect();
        let mut spec = oci_spec(&args, setup.terminal, &self.cgroup_of(&setup.id));
        if let Some(limit) = setup.memory_limit {
            spec["linux"]["resources"]["memory"] =
                serde_json::json!({ "limit": limit, "swap": limit });
        }
        if let Some(sandbox) = &setup.sandbox {
            spec["annotations"] = serde_json::json!({
                "io.kubernetes.cri.sandbox-id": sandbox,
                "io.kubernetes.cri.container-type":
                    if *sandbox == setup.id { "sandbox" } else { "container" },
            });
        }
        let json = serde_json::to_vec_pretty(&spec).map_err(|e| Verdict::Fail(e.to_string()))?;
        std::fs::write(path.join("config.json"), json).map_err(|e| fail("config.json", e))?;
        self.bundles.push(Bundle {
            id: setup.id.clone(),
            path: path.clone(),
        });
        Ok(path)
    }

    /// The directory a container's rootfs is bound from: files put there are the
    /// container's.
    pub fn rootfs_source(&self, id: &str) -> PathBuf {
        self.dir.path().join("rootfs").join(id)
    }

    pub fn cgroup_of(&self, id: &str) -> String {
        format!("/{}/{id}", self.ns)
    }

    /// Runs the binary's `start` in `bundle` and connects, as containerd does; a shim
    /// that answers with an address already connected (a pod's shim) is reused.
    pub fn launch(&mut self, id: &str, bundle: &Path, setup: &Setup) -> Outcome<usize> {
        self.logs
            .push(ShimLog::open(bundle).map_err(|e| format!("log FIFO: {e}"))?);
        let began = Instant::now();
        let boot = self.manager.start(
            &self.target.path,
            self.target.protocol,
            (&self.ns, id),
            bundle,
            setup.options.clone(),
        )?;
        self.target
            .timings
            .record("(binary) start", began.elapsed());
        if let Some(i) = self.shims.iter().position(|s| s.address == boot.address) {
            return Ok(i);
        }
        let api = TaskApi::connect(&boot, self.target.timings.clone())?;
        let connect = api.connect_rpc(&ConnectRequest {
            id: id.to_string(),
            ..Default::default()
        })?;
        self.shims.push(Shim {
            address: boot.address,
            api: Arc::new(api),
            pid: connect.shim_pid,
        });
        Ok(self.shims.len() - 1)
    }

    pub fn shim_pid(&self, shim: usize) -> u32 {
        self.shims[shim].pid
    }

    pub fn shim_address(&self, shim: usize) -> String {
        self.shims[shim].address.clone()
    }

    /// Everything for a Create of `setup` short of calling it: the bundle, the shim,
    /// the FIFOs (their readers already waiting) and the request.
    pub fn prepare(&mut self, setup: &Setup) -> Outcome<(Process, CreateTaskRequest)> {
        let bundle = self.bundle(setup)?;
        self.prepare_in(setup, bundle)
    }

    /// [`Ctx::prepare`] in a bundle already made.
    pub fn prepare_in(
        &mut self,
        setup: &Setup,
        bundle: PathBuf,
    ) -> Outcome<(Process, CreateTaskRequest)> {
        let shim = self.launch(&setup.id, &bundle, setup)?;
        let (stdin, stdout, stderr) = self.fifos(setup)?;
        let (stdin_uri, stdout_uri, stderr_uri) = stdio_paths(&stdin, &stdout, &stderr);
        let source = self.rootfs_source(&setup.id);
        let req = CreateTaskRequest {
            id: setup.id.clone(),
            bundle: bundle.to_string_lossy().into_owned(),
            rootfs: vec![Mount {
                type_: "bind".into(),
                source: source.to_string_lossy().into_owned(),
                options: vec!["rbind".into(), "rw".into()],
                ..Default::default()
            }],
            terminal: setup.terminal,
            stdin: stdin_uri.clone(),
            stdout: stdout_uri.clone(),
            stderr: stderr_uri.clone(),
            options: setup.options.clone().into(),
            ..Default::default()
        };
        let process = Process {
            container_id: setup.id.clone(),
            exec_id: String::new(),
            api: self.shims[shim].api.clone(),
            pid: 0,
            bundle,
            stdout,
            stderr,
            stdin_path: stdin,
            stdin: None,
            shim,
        };
        Ok((process, req))
    }

    /// FIFOs as containerd makes them: stdout always when there is stdio, stderr only
    /// without a terminal, stdin when asked for.
    fn fifos(
        &mut self,
        setup: &Setup,
    ) -> Outcome<(Option<PathBuf>, Option<Capture>, Option<Capture>)> {
        if !setup.stdio {
            return Ok((None, None, None));
        }
        self.fifo_seq += 1;
        let dir = self.dir.path().join("fifo");
        std::fs::create_dir_all(&dir).map_err(|e| format!("fifo dir: {e}"))?;
        let base = dir.join(format!("{}-{}", setup.id, self.fifo_seq));
        let name = |s: &str| PathBuf::from(format!("{}-{s}", base.display()));
        let stdin = if setup.stdin {
            super::stdio::mkfifo(&name("stdin")).map_err(|e| format!("stdin FIFO: {e}"))?;
            Some(name("stdin"))
        } else {
            None
        };
        let stdout = Capture::fifo(&name("stdout")).map_err(|e| format!("stdout FIFO: {e}"))?;
        self.captures.push(stdout.clone());
        let stderr = if setup.terminal {
            None
        } else {
            let c = Capture::fifo(&name("stderr")).map_err(|e| format!("stderr FIFO: {e}"))?;
            self.captures.push(c.clone());
            Some(c)
        };
        Ok((stdin, Some(stdout), stderr))
    }

    /// Create (the task is CREATED, its stdin writable).
    pub fn create(&mut self, setup: &Setup) -> Outcome<Process> {
        let (mut p, req) = self.prepare(setup)?;
        let r = p.api.create(&req)?;
        p.pid = r.pid;
        self.pids.push(r.pid);
        Ok(p)
    }

    /// Create and Start.
    pub fn run(&mut self, setup: &Setup) -> Outcome<Process> {
        let mut p = self.create(setup)?;
        p.start()?;
        Ok(p)
    }

    /// Exec (not yet started) of `setup` in `container`.
    pub fn exec(&mut self, container: &Process, setup: &Setup) -> Outcome<Process> {
        let spec = serde_json::json!({
            "args": setup.args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/",
            "terminal": setup.spec_terminal.unwrap_or(setup.terminal),
            "user": {"uid": 0, "gid": 0},
        });
        self.exec_process(container, setup, spec)
    }

    /// Exec (not yet started) in `container` of the process `spec` (the JSON of an OCI
    /// runtime-spec Process, sent as is), with the stdio of `setup`.
    pub fn exec_process(
        &mut self,
        container: &Process,
        setup: &Setup,
        spec: serde_json::Value,
    ) -> Outcome<Process> {
        let (stdin, stdout, stderr) = self.fifos(setup)?;
        let (stdin_uri, stdout_uri, stderr_uri) = stdio_paths(&stdin, &stdout, &stderr);
        container.api.exec(&ExecProcessRequest {
            id: container.container_id.clone(),
            exec_id: setup.id.clone(),
            terminal: setup.terminal,
            stdin: stdin_uri.clone(),
            stdout: stdout_uri.clone(),
            stderr: stderr_uri.clone(),
            spec: MessageField::some(Any {
                type_url: SPEC_PROCESS_URL.into(),
                value: serde_json::to_vec(&spec).unwrap_or_default(),
                ..Default::default()
            }),
            ..Default::default()
        })?;
        Ok(Process {
            container_id: container.container_id.clone(),
            exec_id: setup.id.clone(),
            api: container.api.clone(),
            pid: 0,
            bundle: container.bundle.clone(),
            stdout,
            stderr,
            stdin_path: stdin,
            stdin: None,
            shim: container.shim,
        })
    }

    /// Exec and Start.
    pub fn run_exec(&mut self, container: &Process, setup: &Setup) -> Outcome<Process> {
        let mut p = self.exec(container, setup)?;
        let pid = p.start()?;
        self.pids.push(pid);
        Ok(p)
    }

    /// The shim's side of one container's life, as a manager sees it: `start`, Create,
    /// Start, the exit of `true` (Wait), Delete, Shutdown and the shim's exit. The
    /// bundle is made before the clock starts.
    pub fn lifecycle(&mut self, id: &str) -> Outcome<Duration> {
        let setup = cmd(id, &["true"]).no_stdio();
        let bundle = self.bundle(&setup)?;
        let began = Instant::now();
        let (mut p, req) = self.prepare_in(&setup, bundle)?;
        p.pid = p.api.create(&req)?.pid;
        self.pids.push(p.pid);
        p.start()?;
        let code = p.wait()?;
        ensure!(code == 0, "true exited {code}");
        p.delete()?;
        let shim = self.shims[p.shim].pid;
        let _ = p.api.shutdown(&ShutdownRequest::default());
        ensure!(
            wait_gone(shim, Duration::from_secs(10)),
            "the shim did not exit after Shutdown"
        );
        Ok(began.elapsed())
    }

    /// Processes the harness must see gone at the end.
    pub fn track(&mut self, pids: &[u32]) {
        self.pids.extend_from_slice(pids);
    }

    /// The events of this scenario, in the order they arrived.
    pub fn events(&self) -> Vec<Event> {
        self.events.of_namespace(&self.ns)
    }

    /// Topics for one container, in order.
    pub fn topics(&self, container: &str) -> Vec<String> {
        topics_of(&self.events(), container)
    }

    /// Waits for `topic` about `container` (at most 10 s), then returns all its topics.
    pub fn wait_topic(&self, container: &str, topic: &str) -> Outcome<Vec<String>> {
        let all = self
            .events
            .wait_until(&self.ns, Duration::from_secs(10), |es| {
                es.iter()
                    .any(|e| e.container_id == container && e.topic == topic)
            });
        let topics = topics_of(&all, container);
        ensure!(
            topics.iter().any(|t| t == topic),
            "no {topic} event for {container}; received {topics:?}"
        );
        Ok(topics)
    }

    /// Runs the binary's `delete` for `bundle` (id and bundle as containerd passes them).
    pub fn binary_delete(&self, id: &str, bundle: &Path) -> Outcome<(i32, Vec<u8>, String)> {
        let began = Instant::now();
        let out = self
            .manager
            .delete(&self.target.path, &self.ns, id, bundle)
            .map_err(|e| format!("running delete: {e}"))?;
        self.target
            .timings
            .record("(binary) delete", began.elapsed());
        Ok(out)
    }

    /// The last lines the shims logged, for a failure report.
    pub fn log_tail(&self) -> String {
        self.log_lines(5)
    }

    /// The last `lines` lines each shim of this context logged.
    pub fn log_lines(&self, lines: usize) -> String {
        self.logs
            .iter()
            .map(|l| l.tail(lines))
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// What a manager does when it is done with a shim: kill and delete what is left,
    /// Shutdown, the binary's `delete` per bundle. Then what must be gone is checked,
    /// and whatever is not is removed by force and reported.
    pub fn finish(mut self) -> Result<(), String> {
        for shim in &self.shims {
            if !proc::alive(shim.pid) {
                continue;
            }
            for b in &self.bundles {
                let req = PidsRequest {
                    id: b.id.clone(),
                    ..Default::default()
                };
                if let Ok(r) = shim.api.pids(&req) {
                    self.pids.extend(r.processes.iter().map(|p| p.pid));
                }
                let _ = shim.api.kill(&KillRequest {
                    id: b.id.clone(),
                    signal: 9,
                    all: true,
                    ..Default::default()
                });
                let _ = shim.api.wait_for(
                    &WaitRequest {
                        id: b.id.clone(),
                        ..Default::default()
                    },
                    Duration::from_secs(5),
                );
                let _ = shim.api.delete(&DeleteRequest {
                    id: b.id.clone(),
                    ..Default::default()
                });
            }
            let _ = shim.api.shutdown(&ShutdownRequest {
                id: String::new(),
                now: false,
                ..Default::default()
            });
        }
        let mut left = Vec::new();
        for shim in &self.shims {
            if !wait_gone(shim.pid, Duration::from_secs(5)) {
                left.push(format!("shim pid {} still runs after Shutdown", shim.pid));
                // SAFETY: kill(2) of the shim this scenario started.
                unsafe { libc::kill(shim.pid as i32, libc::SIGKILL) };
                wait_gone(shim.pid, Duration::from_secs(5));
            }
        }
        for b in &self.bundles {
            let _ = self.binary_delete(&b.id, &b.path);
        }
        for &pid in &self.pids {
            if pid > 0 && !wait_gone(pid, Duration::from_secs(3)) {
                left.push(format!("container process {pid}"));
                // SAFETY: kill(2) of a container process this scenario started.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        }
        for shim in &self.shims {
            let socket = socket_path(&shim.address);
            if socket.exists() {
                left.push(format!("socket {}", socket.display()));
                let _ = std::fs::remove_file(&socket);
            }
        }
        for mount in proc::mounts_under(self.dir.path()) {
            left.push(format!("mount {}", mount.display()));
        }
        let state_root = self.target.state_root.join(&self.ns);
        for b in &self.bundles {
            if state_root.join(&b.id).exists() {
                left.push(format!(
                    "runtime state {}",
                    state_root.join(&b.id).display()
                ));
                let _ = crate::runc::command()
                    .arg("--root")
                    .arg(&state_root)
                    .args(["delete", "--force", &b.id])
                    .output();
            }
            for cg in cgroups_of(&self.ns, &b.id) {
                left.push(format!("cgroup {}", cg.display()));
            }
        }
        for c in self.captures.drain(..) {
            c.release();
        }
        remove_cgroup_tree(&self.ns);
        let _ = std::fs::remove_dir_all(&state_root);
        self.logs.clear();
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("left behind: {}", left.join(", ")))
        }
    }
}

/// The paths of a process's FIFOs as a Create or Exec request names them ("" for none).
fn stdio_paths(
    stdin: &Option<PathBuf>,
    stdout: &Option<Capture>,
    stderr: &Option<Capture>,
) -> (String, String, String) {
    (
        stdin
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default(),
        stdout.as_ref().map(Capture::path).unwrap_or_default(),
        stderr.as_ref().map(Capture::path).unwrap_or_default(),
    )
}

pub fn topics_of(events: &[Event], container: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.container_id == container)
        .map(|e| e.topic.clone())
        .collect()
}

pub fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + super::patience(timeout);
    while proc::alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// Runtime options packed as containerd packs them.
fn options_any(o: &skiff_protos::options::Options) -> Any {
    Any {
        type_url: skiff_protos::type_url::RUNC_OPTIONS.into(),
        value: o.write_to_bytes().unwrap_or_default(),
        ..Default::default()
    }
}
