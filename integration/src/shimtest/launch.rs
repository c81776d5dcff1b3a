//! Running a shim binary the way containerd does: `start` and `delete` with containerd's
//! flags, environment and working directory, and the `log` FIFO in the bundle that
//! containerd reads the shim's log from.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// What every launch of one run shares: the (never dialled) containerd address the
/// shim's socket name derives from, the events endpoint, the publish binary, and the
/// socket directory a 2.3 bootstrap names.
#[derive(Clone)]
pub struct Manager {
    pub address: PathBuf,
    pub ttrpc_address: String,
    pub publish_binary: PathBuf,
    pub socket_dir: PathBuf,
}

/// How `start` hears what it is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartProtocol {
    /// containerd 1.6 to 2.2: the runtime options (an Any) on stdin, flags and
    /// environment for the rest; any form of reply.
    #[default]
    Legacy,
    /// containerd 2.3: a `BootstrapParams` protobuf on stdin, the options among its
    /// extensions, a private socket directory; a `BootstrapResult` expected back.
    Bootstrap,
}

pub use skiff_shim_client::{parse_start_reply, socket_path, Bootstrap};

impl Manager {
    fn launch(&self) -> skiff_shim_client::Launch<'_> {
        skiff_shim_client::Launch {
            address: &self.address,
            publish_binary: &self.publish_binary,
            ttrpc_address: self.ttrpc_address.as_ref(),
        }
    }

    fn command(&self, shim: &Path, namespace: &str, id: &str, bundle: &Path) -> Command {
        self.launch().command(shim, namespace, id, bundle)
    }

    /// `SHIM ... -id ID start` in the bundle, told what it is asked by `protocol`, with
    /// the runtime options `options` as containerd sends them.
    pub fn start(
        &self,
        shim: &Path,
        protocol: StartProtocol,
        (namespace, id): (&str, &str),
        bundle: &Path,
        options: Option<protobuf::well_known_types::any::Any>,
    ) -> Result<Bootstrap, String> {
        use protobuf::Message;
        let input = match protocol {
            StartProtocol::Legacy => options.map(|a| a.write_to_bytes().unwrap_or_default()),
            StartProtocol::Bootstrap => {
                Some(
                    self.launch()
                        .bootstrap_params(namespace, id, options, Some(&self.socket_dir)),
                )
            }
        };
        let options = input.as_deref();
        let mut cmd = self.command(shim, namespace, id, bundle);
        cmd.arg("start")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.stdin(if options.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", shim.display()))?;
        if let (Some(bytes), Some(mut stdin)) = (options, child.stdin.take()) {
            use std::io::Write;
            stdin
                .write_all(bytes)
                .map_err(|e| format!("writing options to start: {e}"))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| format!("waiting for start: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "start exited with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let boot = parse_start_reply(&out.stdout)?;
        if protocol == StartProtocol::Bootstrap
            && !socket_path(&boot.address).starts_with(&self.socket_dir)
        {
            return Err(format!(
                "the bootstrap named socket_dir {}, start answered {}",
                self.socket_dir.display(),
                boot.address
            ));
        }
        Ok(boot)
    }

    /// `SHIM ... -id ID -bundle BUNDLE delete`: (exit status, stdout, stderr).
    pub fn delete(
        &self,
        shim: &Path,
        namespace: &str,
        id: &str,
        bundle: &Path,
    ) -> io::Result<(i32, Vec<u8>, String)> {
        let out = self
            .command(shim, namespace, id, bundle)
            .arg("-bundle")
            .arg(bundle)
            .arg("delete")
            .stdin(Stdio::null())
            .output()?;
        Ok((
            out.status.code().unwrap_or(-1),
            out.stdout,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }
}

/// The bundle's `log` FIFO with a reader behind it, as containerd keeps one: a shim
/// that opens it for writing does not block, and what it writes is kept for reports.
pub struct ShimLog {
    text: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
}

impl ShimLog {
    pub fn open(bundle: &Path) -> io::Result<ShimLog> {
        let path = bundle.join("log");
        crate::shimtest::stdio::mkfifo(&path)?;
        // Read-write, so the reader sees no end of file between writers (a shim's
        // `start` and its server open it one after the other).
        let mut fifo = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)?;
        let text = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (t, s) = (text.clone(), stop.clone());
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match fifo.read(&mut buf) {
                    Ok(n) if n > 0 => t.lock().unwrap().extend_from_slice(&buf[..n]),
                    _ => {
                        if s.load(Ordering::Relaxed) {
                            return;
                        }
                        poll_readable(&fifo, 100);
                    }
                }
            }
        });
        Ok(ShimLog {
            text,
            stop,
            reader: Some(reader),
        })
    }

    /// The last `lines` lines the shim logged.
    pub fn tail(&self, lines: usize) -> String {
        let text = self.text.lock().unwrap();
        let text = String::from_utf8_lossy(&text);
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

fn poll_readable(file: &File, millis: i32) {
    use std::os::fd::AsRawFd;
    let mut pfd = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe {
        libc::poll(&mut pfd, 1, millis);
    }
}

impl Drop for ShimLog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}
