use crate::args::{
    CheckpointOptions, CreateOptions, DeleteOptions, ExecOptions, GlobalOptions, KillOptions,
};
use crate::monitor::{DirectMonitor, ProcessMonitor};
use crate::oci::OciRuntime;
use crate::state::{ContainerState, ProcessList};
use crate::{log, Error, Result};
use std::ffi::OsString;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The standard streams a container's process gets from `create` or `exec`; `None` is
/// /dev/null. The runtime hands them on to the container, so they are the container's.
#[derive(Debug, Default)]
pub struct Stdio3 {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

/// One OCI runtime binary with its global options.
#[derive(Clone)]
pub struct Runtime {
    binary: PathBuf,
    global: GlobalOptions,
    monitor: Arc<dyn ProcessMonitor>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("binary", &self.binary)
            .field("global", &self.global)
            .finish()
    }
}

/// What a command's own stdout and stderr are: captured for commands that answer (state,
/// ps), or the container's streams for the commands that start container processes.
enum Streams {
    Capture { stdin: Option<Vec<u8>> },
    Container(Stdio3),
}

static LOG_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Runtime {
    /// `binary` is a path or a name looked up on PATH (`runc`, `crun`).
    pub fn new(binary: impl Into<PathBuf>, global: GlobalOptions) -> Self {
        Runtime {
            binary: binary.into(),
            global,
            monitor: Arc::new(DirectMonitor),
        }
    }

    pub fn with_monitor(mut self, monitor: Arc<dyn ProcessMonitor>) -> Self {
        self.monitor = monitor;
        self
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    pub fn global(&self) -> &GlobalOptions {
        &self.global
    }

    fn run_captured(&self, command: &'static str, args: Vec<OsString>) -> Result<Vec<u8>> {
        self.run(command, args, Streams::Capture { stdin: None })
    }

    fn run(&self, command: &'static str, args: Vec<OsString>, streams: Streams) -> Result<Vec<u8>> {
        let log = LogFile::open(self.global.log.as_deref())?;
        let mut cmd = Command::new(&self.binary);
        cmd.args(self.global.args(log.path()));
        cmd.args(args);
        let mut input = None;
        let capture = match streams {
            Streams::Capture { stdin } => {
                cmd.stdin(if stdin.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::null()
                });
                cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
                input = stdin;
                true
            }
            Streams::Container(stdio) => {
                cmd.stdin(stdio.stdin.map_or_else(Stdio::null, Stdio::from));
                cmd.stdout(stdio.stdout.map_or_else(Stdio::null, Stdio::from));
                cmd.stderr(stdio.stderr.map_or_else(Stdio::null, Stdio::from));
                false
            }
        };
        let binary = self.binary.to_string_lossy().into_owned();
        let mut child = self
            .monitor
            .spawn(&mut cmd)
            .map_err(|source| Error::Spawn {
                binary: binary.clone(),
                source,
            })?;
        // The Command still holds the container's stream ends; drop them now so that
        // only the runtime (and then the container) keeps them open.
        drop(cmd);
        if let (Some(data), Some(mut pipe)) = (input, child.stdin.take()) {
            pipe.write_all(&data)
                .map_err(|e| Error::io(format!("writing to {binary} {command}"), e))?;
        }
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        if capture {
            if let Some(mut out) = child.stdout.take() {
                out.read_to_end(&mut stdout)
                    .map_err(|e| Error::io(format!("reading {binary} {command}"), e))?;
            }
            if let Some(mut err) = child.stderr.take() {
                err.read_to_end(&mut stderr)
                    .map_err(|e| Error::io(format!("reading {binary} {command}"), e))?;
            }
        }
        let status = self
            .monitor
            .wait(&mut child)
            .map_err(|e| Error::io(format!("waiting for {binary} {command}"), e))?;
        if status.success() {
            return Ok(stdout);
        }
        let message = log
            .read_new()
            .and_then(|text| log::last_error(&text))
            .or_else(|| {
                let text = String::from_utf8_lossy(&stderr).trim().to_string();
                (!text.is_empty()).then_some(text)
            })
            .unwrap_or_default();
        Err(Error::Failed {
            binary,
            command,
            message,
            status: status.code(),
        })
    }
}

impl OciRuntime for Runtime {
    fn create(&self, id: &str, bundle: &Path, opts: &CreateOptions, stdio: Stdio3) -> Result<()> {
        self.run("create", opts.args(id, bundle), Streams::Container(stdio))
            .map(drop)
    }

    fn checkpoint(&self, id: &str, opts: &CheckpointOptions) -> Result<()> {
        self.run_captured("checkpoint", opts.args(id)).map(drop)
    }

    fn restore(
        &self,
        id: &str,
        bundle: &Path,
        opts: &CheckpointOptions,
        create: &CreateOptions,
        stdio: Stdio3,
    ) -> Result<()> {
        self.run(
            "restore",
            opts.restore_args(id, bundle, create),
            Streams::Container(stdio),
        )
        .map(drop)
    }

    fn start(&self, id: &str) -> Result<()> {
        self.run_captured("start", vec!["start".into(), id.into()])
            .map(drop)
    }

    fn exec(&self, id: &str, opts: &ExecOptions, stdio: Stdio3) -> Result<()> {
        self.run("exec", opts.args(id), Streams::Container(stdio))
            .map(drop)
    }

    fn kill(&self, id: &str, signal: u32, opts: &KillOptions) -> Result<()> {
        self.run_captured("kill", opts.args(id, signal)).map(drop)
    }

    fn delete(&self, id: &str, opts: &DeleteOptions) -> Result<()> {
        self.run_captured("delete", opts.args(id)).map(drop)
    }

    fn pause(&self, id: &str) -> Result<()> {
        self.run_captured("pause", vec!["pause".into(), id.into()])
            .map(drop)
    }

    fn resume(&self, id: &str) -> Result<()> {
        self.run_captured("resume", vec!["resume".into(), id.into()])
            .map(drop)
    }

    fn state(&self, id: &str) -> Result<ContainerState> {
        let out = self.run_captured("state", vec!["state".into(), id.into()])?;
        serde_json::from_slice(&out).map_err(|e| Error::Parse {
            command: "state",
            message: e.to_string(),
        })
    }

    fn ps(&self, id: &str) -> Result<ProcessList> {
        let out = self.run_captured(
            "ps",
            vec!["ps".into(), "--format".into(), "json".into(), id.into()],
        )?;
        // runc prints `null` for a container without processes.
        let list: Option<ProcessList> = serde_json::from_slice(&out).map_err(|e| Error::Parse {
            command: "ps",
            message: e.to_string(),
        })?;
        Ok(list.unwrap_or_default())
    }

    fn features(&self) -> Result<Vec<u8>> {
        // Asked with no global options: it concerns no container, no root and no log.
        let binary = self.binary.to_string_lossy().into_owned();
        let mut cmd = Command::new(&self.binary);
        cmd.arg("features")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self
            .monitor
            .spawn(&mut cmd)
            .map_err(|source| Error::Spawn {
                binary: binary.clone(),
                source,
            })?;
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        if let Some(mut out) = child.stdout.take() {
            out.read_to_end(&mut stdout)
                .map_err(|e| Error::io(format!("reading {binary} features"), e))?;
        }
        if let Some(mut err) = child.stderr.take() {
            let _ = err.read_to_end(&mut stderr);
        }
        let status = self
            .monitor
            .wait(&mut child)
            .map_err(|e| Error::io(format!("waiting for {binary} features"), e))?;
        if !status.success() {
            return Err(Error::Failed {
                binary,
                command: "features",
                message: String::from_utf8_lossy(&stderr).trim().to_string(),
                status: status.code(),
            });
        }
        serde_json::from_slice::<serde_json::Value>(&stdout).map_err(|e| Error::Parse {
            command: "features",
            message: e.to_string(),
        })?;
        Ok(stdout)
    }

    fn update(&self, id: &str, resources_json: &[u8]) -> Result<()> {
        self.run(
            "update",
            vec!["update".into(), "--resources".into(), "-".into(), id.into()],
            Streams::Capture {
                stdin: Some(resources_json.to_vec()),
            },
        )
        .map(drop)
    }
}

/// The runtime's log for one command: the configured log (read from where it ended before
/// the command), or a temporary file removed afterwards.
struct LogFile {
    path: PathBuf,
    start: u64,
    temporary: bool,
}

impl LogFile {
    fn open(configured: Option<&Path>) -> Result<Self> {
        match configured {
            Some(path) => {
                let start = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
                Ok(LogFile {
                    path: path.to_path_buf(),
                    start,
                    temporary: false,
                })
            }
            None => {
                let n = LOG_COUNTER.fetch_add(1, Ordering::Relaxed);
                let path = std::env::temp_dir()
                    .join(format!("runc-driver-{}-{n}.log", std::process::id()));
                Ok(LogFile {
                    path,
                    start: 0,
                    temporary: true,
                })
            }
        }
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn read_new(&self) -> Option<String> {
        let mut file = fs::File::open(&self.path).ok()?;
        file.seek(SeekFrom::Start(self.start)).ok()?;
        let mut text = String::new();
        file.read_to_string(&mut text).ok()?;
        Some(text)
    }
}

impl Drop for LogFile {
    fn drop(&mut self) {
        if self.temporary {
            let _ = fs::remove_file(&self.path);
        }
    }
}
