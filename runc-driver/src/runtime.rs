use crate::args::{self, GlobalOptions};
use crate::log;
use skiff_oci_runtime::{
    CheckpointOptions, ContainerState, CreateOptions, DeleteOptions, DirectMonitor, Error,
    ExecOptions, KillOptions, OciRuntime, ProcessList, ProcessMonitor, Result, Stdio3,
};
use std::ffi::OsString;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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

    fn run_captured(
        &self,
        command: &'static str,
        id: &str,
        args: Vec<OsString>,
    ) -> Result<Vec<u8>> {
        self.run(command, id, args, Streams::Capture { stdin: None })
    }

    /// Runs one command; on failure, says why in the runtime's words and, for a command
    /// on a container, of which kind (no such container, or its process has ended).
    fn run(
        &self,
        command: &'static str,
        id: &str,
        args: Vec<OsString>,
        streams: Streams,
    ) -> Result<Vec<u8>> {
        match self.run_once(command, args, streams, true) {
            Err(failed @ Error::Failed { .. }) => Err(self.classify(command, id, failed)),
            other => other,
        }
    }

    /// What a failed command on container `id` met: a container the runtime does not
    /// know (no state directory under the root), one whose process has ended (state
    /// says stopped), or another failure.
    fn classify(&self, command: &'static str, id: &str, failed: Error) -> Error {
        let runtime = self.binary.to_string_lossy().into_owned();
        let id = id.to_string();
        // create and restore make the container: before them it is not there anyway.
        let on_existing = !matches!(command, "create" | "restore");
        if let (Some(root), true) = (&self.global.root, on_existing) {
            if !root.join(&id).exists() {
                return Error::NotFound {
                    runtime,
                    command,
                    id,
                };
            }
        }
        let stoppable = matches!(command, "kill" | "pause" | "resume" | "exec" | "update");
        match failed {
            Error::Failed { message, .. }
                if stoppable && self.state(&id).is_ok_and(|s| s.status == "stopped") =>
            {
                Error::NotRunning {
                    runtime,
                    command,
                    id,
                    message,
                }
            }
            other => other,
        }
    }

    /// One run of the binary; `globals` puts the global options (root, log, cgroup
    /// driver) before the command.
    fn run_once(
        &self,
        command: &'static str,
        args: Vec<OsString>,
        streams: Streams,
        globals: bool,
    ) -> Result<Vec<u8>> {
        let log = LogFile::open(self.global.log.as_deref())?;
        let mut cmd = Command::new(&self.binary);
        if globals {
            cmd.args(self.global.args(log.path()));
        }
        cmd.args(args);
        let input = streams.attach(&mut cmd);
        let binary = self.binary.to_string_lossy().into_owned();
        let mut child = None;
        let pid = self
            .monitor
            .start(&mut || {
                let c = cmd.spawn()?;
                let pid = c.id();
                child = Some(c);
                Ok(pid)
            })
            .map_err(|source| Error::Spawn {
                binary: binary.clone(),
                source,
            })?;
        // The Command still holds the container's stream ends; drop them now so that
        // only the runtime (and then the container) keeps them open.
        drop(cmd);
        let mut child = child.expect("started");
        let (stdout, stderr) = exchange(&mut child, input)
            .map_err(|e| Error::io(format!("talking to {binary} {command}"), e))?;
        let status = self
            .monitor
            .wait(pid)
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
            message: log::without_command_prefix(&binary, command, &message),
            runtime: binary,
            command,
            status: status.code(),
        })
    }
}

impl Streams {
    /// Sets the command's stdio; returns what to write to its stdin.
    fn attach(self, cmd: &mut Command) -> Option<Vec<u8>> {
        match self {
            Streams::Capture { stdin } => {
                cmd.stdin(if stdin.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::null()
                });
                cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
                stdin
            }
            Streams::Container(stdio) => {
                cmd.stdin(stdio.stdin.map_or_else(Stdio::null, Stdio::from));
                cmd.stdout(stdio.stdout.map_or_else(Stdio::null, Stdio::from));
                cmd.stderr(stdio.stderr.map_or_else(Stdio::null, Stdio::from));
                None
            }
        }
    }
}

/// Writes `input` to a captured command and reads what it prints on stdout and stderr
/// together, to the end of both: a runtime that fills one pipe while the shim waits on
/// the other would otherwise block this container's queue for good.
fn exchange(
    child: &mut std::process::Child,
    input: Option<Vec<u8>>,
) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    if let (Some(data), Some(mut pipe)) = (input, child.stdin.take()) {
        pipe.write_all(&data)?;
    }
    let out = child.stdout.take().map(std::os::fd::OwnedFd::from);
    let err = child.stderr.take().map(std::os::fd::OwnedFd::from);
    read_both(out, err)
}

/// Reads two pipes to their ends at once, waiting with poll(2) for whichever has data.
fn read_both(
    out: Option<std::os::fd::OwnedFd>,
    err: Option<std::os::fd::OwnedFd>,
) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    use std::os::fd::AsRawFd;
    let mut ends = [
        (out.map(fs::File::from), Vec::new()),
        (err.map(fs::File::from), Vec::new()),
    ];
    let mut chunk = [0u8; 8192];
    while ends.iter().any(|(file, _)| file.is_some()) {
        let mut polled: Vec<libc::pollfd> = ends
            .iter()
            .map(|(file, _)| libc::pollfd {
                // poll(2) skips negative fds: an end already read to its end.
                fd: file.as_ref().map_or(-1, |f| f.as_raw_fd()),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: the pointer and length describe `polled`, which outlives the call.
        let n = unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, -1) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for ((file, buf), p) in ends.iter_mut().zip(&polled) {
            let Some(f) = file.as_mut().filter(|_| p.revents != 0) else {
                continue;
            };
            match f.read(&mut chunk) {
                Ok(0) => *file = None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    let [(_, stdout), (_, stderr)] = ends;
    Ok((stdout, stderr))
}

impl OciRuntime for Runtime {
    fn create(&self, id: &str, bundle: &Path, opts: &CreateOptions, stdio: Stdio3) -> Result<()> {
        self.run(
            "create",
            id,
            args::create(opts, id, bundle),
            Streams::Container(stdio),
        )
        .map(drop)
    }

    fn checkpoint(&self, id: &str, opts: &CheckpointOptions) -> Result<()> {
        self.run_captured("checkpoint", id, args::checkpoint(opts, id))
            .map(drop)
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
            id,
            args::restore(opts, id, bundle, create),
            Streams::Container(stdio),
        )
        .map(drop)
    }

    fn start(&self, id: &str) -> Result<()> {
        self.run_captured("start", id, vec!["start".into(), id.into()])
            .map(drop)
    }

    fn exec(&self, id: &str, opts: &ExecOptions, stdio: Stdio3) -> Result<()> {
        self.run("exec", id, args::exec(opts, id), Streams::Container(stdio))
            .map(drop)
    }

    fn kill(&self, id: &str, signal: u32, opts: &KillOptions) -> Result<()> {
        self.run_captured("kill", id, args::kill(opts, id, signal))
            .map(drop)
    }

    fn delete(&self, id: &str, opts: &DeleteOptions) -> Result<()> {
        self.run_captured("delete", id, args::delete(opts, id))
            .map(drop)
    }

    fn pause(&self, id: &str) -> Result<()> {
        self.run_captured("pause", id, vec!["pause".into(), id.into()])
            .map(drop)
    }

    fn resume(&self, id: &str) -> Result<()> {
        self.run_captured("resume", id, vec!["resume".into(), id.into()])
            .map(drop)
    }

    fn state(&self, id: &str) -> Result<ContainerState> {
        let out = self.run_captured("state", id, vec!["state".into(), id.into()])?;
        serde_json::from_slice(&out).map_err(|e| Error::Parse {
            command: "state",
            message: e.to_string(),
        })
    }

    fn ps(&self, id: &str) -> Result<ProcessList> {
        let out = self.run_captured(
            "ps",
            id,
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
        let out = self.run_once(
            "features",
            vec!["features".into()],
            Streams::Capture { stdin: None },
            false,
        )?;
        serde_json::from_slice::<serde_json::Value>(&out).map_err(|e| Error::Parse {
            command: "features",
            message: e.to_string(),
        })?;
        Ok(out)
    }

    fn update(&self, id: &str, resources_json: &[u8]) -> Result<()> {
        self.run(
            "update",
            id,
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
