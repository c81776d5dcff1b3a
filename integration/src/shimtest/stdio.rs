//! The manager's side of a process's stdio: FIFOs it creates, a reader per output
//! stream that keeps every byte, and the writing end of stdin.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub fn mkfifo(path: &Path) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: a NUL-terminated path.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[derive(Default)]
struct Received {
    bytes: Vec<u8>,
    eof: bool,
}

/// Everything written to one output FIFO, read by a thread as containerd's copier does:
/// the FIFO is opened when the shim opens its end, and read until the shim closes it.
#[derive(Clone)]
pub struct Capture {
    path: PathBuf,
    state: Arc<(Mutex<Received>, Condvar)>,
}

impl Capture {
    pub fn fifo(path: &Path) -> io::Result<Capture> {
        mkfifo(path)?;
        let state = Arc::new((Mutex::new(Received::default()), Condvar::new()));
        let (p, s) = (path.to_path_buf(), state.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            if let Ok(mut f) = File::open(&p) {
                while let Ok(n) = f.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    s.0.lock().unwrap().bytes.extend_from_slice(&buf[..n]);
                    s.1.notify_all();
                }
            }
            s.0.lock().unwrap().eof = true;
            s.1.notify_all();
        });
        Ok(Capture {
            path: path.to_path_buf(),
            state,
        })
    }

    pub fn path(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.state.0.lock().unwrap().bytes).into_owned()
    }

    /// Everything, once the writer closed the stream; None if it did not within `timeout`.
    pub fn wait_eof(&self, timeout: Duration) -> Option<Vec<u8>> {
        let got = self.wait(timeout, |r| r.eof);
        got.eof.then_some(got.bytes)
    }

    /// Whether `needle` appeared within `timeout`.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> bool {
        let needle = needle.as_bytes().to_vec();
        let got = self.wait(timeout, |r| contains(&r.bytes, &needle));
        contains(&got.bytes, &needle)
    }

    fn wait(&self, timeout: Duration, done: impl Fn(&Received) -> bool) -> Received {
        let deadline = Instant::now() + super::patience(timeout);
        let mut r = self.state.0.lock().unwrap();
        while !done(&r) {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            r = self.state.1.wait_timeout(r, deadline - now).unwrap().0;
        }
        Received {
            bytes: r.bytes.clone(),
            eof: r.eof,
        }
    }

    /// Lets a reader still waiting for the shim to open the FIFO finish, so no thread
    /// outlives the scenario.
    pub fn release(&self) {
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&self.path);
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// The writing end of a stdin FIFO the shim has opened for reading (at Create).
pub fn open_stdin(path: &Path, timeout: Duration) -> io::Result<File> {
    let deadline = Instant::now() + timeout;
    loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
        {
            Ok(f) => {
                // SAFETY: fcntl on a descriptor we own.
                unsafe {
                    let flags = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
                    libc::fcntl(f.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK);
                }
                return Ok(f);
            }
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
}
