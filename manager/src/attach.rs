//! The CLI's end of a process's stdio, as ctr does it: FIFOs made before the task, their
//! reading ends already waiting, output copied to our stdout and stderr; our stdin
//! copied in; with a terminal, our own terminal in raw mode (so Ctrl-C reaches the
//! container) and its size kept in step.

use nix::sys::termios::{self, SetArg, Termios};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

pub struct Fifos {
    pub dir: PathBuf,
    pub stdin: Option<PathBuf>,
    pub stdout: PathBuf,
    pub stderr: Option<PathBuf>,
}

/// A FIFO made by name in the opened directory `dir` (never through a path again).
fn mkfifo(dir: &OwnedFd, p: &Path) -> Result<(), String> {
    let name = p.file_name().unwrap_or_default();
    nix::unistd::mkfifoat(dir, name, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(|e| format!("creating {}: {}", p.display(), e.desc()))
}

impl Fifos {
    /// FIFOs in a new directory under `base`, skiffd's FIFO directory: both are checked
    /// to be root's alone (`secure_dir`), so no other user can swap a FIFO for a symlink
    /// before the shim opens it as root.
    pub fn make(base: &Path, name: &str, stdin: bool, terminal: bool) -> Result<Fifos, String> {
        let leaf = format!("{name}-{}", std::process::id());
        let dir = base.join(&leaf);
        let fd = crate::secure_dir::open_checked(base)
            .and_then(|_| crate::secure_dir::make_private(base, &leaf))
            .map_err(|e| format!("the FIFO directory: {e}"))?;
        let f = Fifos {
            stdin: stdin.then(|| dir.join("stdin")),
            stdout: dir.join("stdout"),
            stderr: (!terminal).then(|| dir.join("stderr")),
            dir,
        };
        for p in [f.stdin.as_ref(), Some(&f.stdout), f.stderr.as_ref()]
            .into_iter()
            .flatten()
        {
            mkfifo(&fd, p)?;
        }
        Ok(f)
    }

    pub fn paths(&self) -> [String; 3] {
        let s = |p: Option<&PathBuf>| p.map(|p| p.display().to_string()).unwrap_or_default();
        [
            s(self.stdin.as_ref()),
            s(Some(&self.stdout)),
            s(self.stderr.as_ref()),
        ]
    }
}

impl Drop for Fifos {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Copies from `path` (opened when the shim opens its end) to `out` until end of file.
pub fn copy_out(path: &Path, mut out: impl Write + Send + 'static) -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel();
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        if let Ok(mut f) = File::open(&path) {
            let mut buf = [0u8; 32 * 1024];
            while let Ok(n) = f.read(&mut buf) {
                if n == 0 || out.write_all(&buf[..n]).is_err() {
                    break;
                }
                let _ = out.flush();
            }
        }
        let _ = tx.send(());
    });
    rx
}

/// Waits (a bounded time) for the output copies to reach end of file.
pub fn drain(done: &[mpsc::Receiver<()>]) {
    for rx in done {
        let _ = rx.recv_timeout(Duration::from_secs(5));
    }
}

/// Copies our stdin into the FIFO; at end of input calls `closed` (CloseIO).
pub fn copy_in(path: &Path, closed: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&path) {
            let mut stdin = std::io::stdin().lock();
            let mut buf = [0u8; 32 * 1024];
            while let Ok(n) = stdin.read(&mut buf) {
                if n == 0 || f.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
        closed();
    })
}

/// Our terminal in raw mode while this lives (when stdin is a terminal).
pub struct RawTerminal(Option<Termios>);

impl RawTerminal {
    pub fn enter() -> RawTerminal {
        let stdin = std::io::stdin();
        if !nix::unistd::isatty(&stdin).unwrap_or(false) {
            return RawTerminal(None);
        }
        let Ok(old) = termios::tcgetattr(&stdin) else {
            return RawTerminal(None);
        };
        let mut raw = old.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(&stdin, SetArg::TCSANOW, &raw);
        RawTerminal(Some(old))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, old);
        }
    }
}

// The TIOCGWINSZ ioctl, as nix generates it (an unsafe fn: nix cannot know what the
// descriptor is).
nix::ioctl_read_bad!(get_window_size, libc::TIOCGWINSZ, nix::pty::Winsize);

/// Our terminal's (columns, rows), if stdout is one.
pub fn window_size() -> Option<(u32, u32)> {
    let mut ws = nix::pty::Winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ on our stdout fills the Winsize it is given, nothing else.
    let done = unsafe { get_window_size(std::io::stdout().as_raw_fd(), &mut ws) };
    (done.is_ok() && ws.ws_col > 0).then_some((ws.ws_col as u32, ws.ws_row as u32))
}

/// Calls `resize` with our terminal's size now and whenever it changes.
pub fn follow_window(resize: impl Fn(u32, u32) + Send + 'static) {
    std::thread::spawn(move || {
        let mut last = None;
        loop {
            let now = window_size();
            if now != last {
                if let Some((w, h)) = now {
                    resize(w, h);
                }
                last = now;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
}
