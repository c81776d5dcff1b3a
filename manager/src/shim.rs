//! Running a shim-v2 binary as containerd does: the runtime name resolved to
//! `containerd-shim-NAME-vN` (or an absolute path), `start` and `delete` with
//! containerd's flags, environment and working directory, and the bundle's `log` FIFO
//! read into skiffd's own log.

use crate::error::{io, Error, Result};
use skiff_shim_client::{parse_start_reply, Bootstrap};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What every shim skiffd starts is told: where skiffd is and where events go.
#[derive(Clone)]
pub struct Launcher {
    pub address: PathBuf,
    pub events_address: PathBuf,
}

/// `io.containerd.skiff.v2` → `containerd-shim-skiff-v2` on PATH, then beside skiffd;
/// an absolute path is used as it is.
pub fn resolve_runtime(name: &str) -> Result<PathBuf> {
    if name.starts_with('/') {
        let p = PathBuf::from(name);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(Error::InvalidArgument(format!(
                "runtime binary {name} does not exist"
            )))
        };
    }
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() < 3 || parts.iter().any(|p| p.is_empty() || p.contains('/')) {
        return Err(Error::InvalidArgument(format!(
            "runtime {name:?} is neither a path nor a name like io.containerd.skiff.v2"
        )));
    }
    let binary = format!(
        "containerd-shim-{}-{}",
        parts[parts.len() - 2],
        parts[parts.len() - 1]
    );
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(own) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        dirs.push(own);
    }
    dirs.into_iter()
        .map(|d| d.join(&binary))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::NotFound(format!(
                "runtime {name}: {binary} is not on PATH nor beside skiffd"
            ))
        })
}

impl Launcher {
    fn command(&self, shim: &Path, ns: &str, id: &str, bundle: &Path) -> Command {
        let publish = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("skiffd"));
        let launch = skiff_shim_client::Launch {
            address: &self.address,
            publish_binary: &publish,
            ttrpc_address: self.events_address.as_os_str(),
        };
        let mut cmd = launch.command(shim, ns, id, bundle);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Makes the `log` FIFO (read into skiffd's log) and runs `start`.
    pub fn start(&self, shim: &Path, ns: &str, id: &str, bundle: &Path) -> Result<Bootstrap> {
        follow_log(bundle, id)?;
        let out = self
            .command(shim, ns, id, bundle)
            .arg("start")
            .output()
            .map_err(|e| io(format!("running {}", shim.display()), e))?;
        if !out.status.success() {
            return Err(Error::FailedPrecondition(format!(
                "{} start failed: {}",
                shim.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        parse_start_reply(&out.stdout).map_err(Error::FailedPrecondition)
    }

    /// The binary's `delete`, for a bundle whose shim is gone: (exit status, pid).
    pub fn delete(&self, shim: &Path, ns: &str, id: &str, bundle: &Path) -> Result<(u32, u32)> {
        let out = self
            .command(shim, ns, id, bundle)
            .arg("-bundle")
            .arg(bundle)
            .arg("delete")
            .output()
            .map_err(|e| io(format!("running {} delete", shim.display()), e))?;
        if !out.status.success() {
            return Err(Error::Internal(format!(
                "{} delete failed: {}",
                shim.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        use protobuf::Message;
        let r = skiff_protos::shim::DeleteResponse::parse_from_bytes(&out.stdout).map_err(|e| {
            Error::Internal(format!(
                "{} delete printed no DeleteResponse: {e}",
                shim.display()
            ))
        })?;
        Ok((r.exit_status, r.pid))
    }
}

/// The shim's log, line by line into skiffd's at debug level, until every writer closed
/// it (the FIFO is opened read-write so that moment never comes between `start` and
/// the server: the reader ends when the bundle's FIFO is removed and the shim is gone).
pub fn follow_log(bundle: &Path, id: &str) -> Result<()> {
    let path = bundle.join("log");
    if !path.exists() {
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .map_err(|e| io("creating the shim log FIFO", std::io::Error::from(e)))?;
    }
    let mut fifo = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&path)
        .map_err(|e| io("opening the shim log FIFO", e))?;
    let id = id.to_string();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut pending = Vec::new();
        let mut writers_seen = false;
        let started = std::time::Instant::now();
        loop {
            match fifo.read(&mut buf) {
                Ok(0) => {
                    // No writer: before the shim opened it, keep waiting (a while);
                    // after, the shim is gone.
                    if writers_seen || started.elapsed() > std::time::Duration::from_secs(30) {
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Ok(n) => {
                    writers_seen = true;
                    pending.extend_from_slice(&buf[..n]);
                    while let Some(i) = pending.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = pending.drain(..=i).collect();
                        crate::log::debug(&format!(
                            "shim {id}: {}",
                            String::from_utf8_lossy(&line).trim_end()
                        ));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    writers_seen = true;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(_) => return,
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_names_resolve_like_containerd() {
        assert!(resolve_runtime("io.containerd.nosuchthing.v9")
            .unwrap_err()
            .to_string()
            .contains("containerd-shim-nosuchthing-v9"));
        assert!(resolve_runtime("../x").is_err());
        assert!(resolve_runtime("/no/such/shim").is_err());
        assert_eq!(
            resolve_runtime("/bin/sh").unwrap(),
            PathBuf::from("/bin/sh")
        );
    }
}
