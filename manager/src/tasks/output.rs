//! A detached task's output: the shim writes stdout and stderr into two FIFOs in the
//! bundle, and skiffd copies them (a thread each) into the container's log under
//! `--root` (`ROOT/logs/NS/ID/output.log`), persistent storage rather than the tmpfs of
//! the state directory. The log has a size cap (`--max-log-size`): a write that would
//! take it past the cap first renames it to `output.log.1` (replacing the one before)
//! and starts a new one, so a container keeps at most twice the cap on disk, its latest
//! output always whole. `skiff logs` prints `output.log.1`, then `output.log`.
//!
//! skiffd reads FIFOs, as Docker's daemon does, instead of giving the shim a `file://`
//! target: a file the shim appends to has no cap. While skiffd is down the shim holds
//! the output; after a restart the readers are started again for the tasks recovered.

use crate::error::{io, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub const LOG_FILE: &str = "output.log";
pub const ROTATED: &str = "output.log.1";
const FIFOS: [&str; 2] = ["stdout.fifo", "stderr.fifo"];

/// Where a detached task's output goes: the FIFOs in its bundle and its log directory.
pub struct Output {
    pub fifos: [PathBuf; 2],
    pub log_dir: PathBuf,
}

impl Output {
    pub fn of(bundle: &Path, log_dir: PathBuf) -> Output {
        Output {
            fifos: FIFOS.map(|n| bundle.join(n)),
            log_dir,
        }
    }

    /// Whether the bundle has output FIFOs (a detached task's), after a restart.
    pub fn exists(&self) -> bool {
        self.fifos[0].exists()
    }

    /// Makes the FIFOs and the log directory; the shim gets the FIFO paths.
    pub fn make(&self) -> Result<[String; 2]> {
        std::fs::create_dir_all(&self.log_dir)
            .map_err(|e| io(format!("creating {}", self.log_dir.display()), e))?;
        for f in &self.fifos {
            let _ = std::fs::remove_file(f);
            nix::unistd::mkfifo(f, nix::sys::stat::Mode::from_bits_truncate(0o600))
                .map_err(|e| io("creating an output FIFO", std::io::Error::from(e)))?;
        }
        Ok(self.fifos.clone().map(|f| f.display().to_string()))
    }

    /// A thread per FIFO copying into the log until the shim closes its end.
    pub fn follow(&self, max_size: u64) -> Result<()> {
        let log = Arc::new(Mutex::new(Log::open(&self.log_dir, max_size)?));
        for f in &self.fifos {
            let fifo = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open(f)
                .map_err(|e| io(format!("opening {}", f.display()), e))?;
            let log = log.clone();
            std::thread::spawn(move || copy(fifo, &log));
        }
        Ok(())
    }

    /// Ends readers whose writer never came (a task that failed to start): a writer that
    /// comes and goes is the end of their stream.
    pub fn release(&self) {
        for f in &self.fifos {
            let _ = OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(f);
        }
    }
}

/// Until every writer has come and gone. A read finds nothing (or "end of file") also
/// before the shim opened its end, so the end is known from poll: it reports a hang-up
/// only once a writer has come and gone, and before that waits for one.
fn copy(mut fifo: File, log: &Mutex<Log>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match fifo.read(&mut buf) {
            Ok(n) if n > 0 => {
                if let Err(e) = log.lock().unwrap().write(&buf[..n]) {
                    crate::log::warn(&format!("writing a container log: {e}"));
                }
                continue;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {
                let got = fds[0].revents().unwrap_or(PollFlags::empty());
                if got.contains(PollFlags::POLLHUP) && !got.contains(PollFlags::POLLIN) {
                    return;
                }
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

/// The log file with its cap.
struct Log {
    dir: PathBuf,
    file: File,
    size: u64,
    max: u64,
}

fn open_log(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

impl Log {
    fn open(dir: &Path, max: u64) -> Result<Log> {
        let path = dir.join(LOG_FILE);
        let file = open_log(&path).map_err(|e| io(format!("opening {}", path.display()), e))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Log {
            dir: dir.to_path_buf(),
            file,
            size,
            max,
        })
    }

    fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        if self.size > 0 && self.size + data.len() as u64 > self.max {
            std::fs::rename(self.dir.join(LOG_FILE), self.dir.join(ROTATED))?;
            self.file = open_log(&self.dir.join(LOG_FILE))?;
            self.size = 0;
        }
        // Past the cap in one write (a cap under one read): only its last `max` bytes.
        let keep = &data[data.len().saturating_sub(self.max.max(1) as usize)..];
        self.file.write_all(keep)?;
        self.size += keep.len() as u64;
        Ok(())
    }
}

/// The log as `skiff logs` shows it: the rotated part, then the current one.
pub fn read(log_dir: &Path) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    for name in [ROTATED, LOG_FILE] {
        match std::fs::read(log_dir.join(name)) {
            Ok(b) => out.extend_from_slice(&b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_rotates_at_its_cap_and_keeps_the_latest_output_whole() {
        let dir = std::env::temp_dir().join(format!("skiff-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut log = Log::open(&dir, 100).unwrap();
        for i in 0..25u8 {
            log.write(&[b'a' + i; 10]).unwrap();
        }
        let cur = std::fs::read(dir.join(LOG_FILE)).unwrap();
        let old = std::fs::read(dir.join(ROTATED)).unwrap();
        assert_eq!((old.len(), cur.len()), (100, 50));
        assert_eq!(&cur[40..], &[b'y'; 10]);
        assert_eq!(read(&dir).unwrap(), [old, cur].concat());
        log.write(&[b'z'; 300]).unwrap();
        assert_eq!(std::fs::read(dir.join(LOG_FILE)).unwrap(), vec![b'z'; 100]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
