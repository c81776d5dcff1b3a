//! A filesystem whose writes hang, as a network filesystem's do when its server is away:
//! a FUSE filesystem served by a thread of the test (the kernel's own FUSE protocol on
//! /dev/fuse, no library), holding one file, `log`. While it is held, a write(2) to
//! the file waits in the kernel for an answer the thread does not give; once released,
//! every write (those waiting too) is taken, and what was written can be read back.
//! Nothing is mocked: the process writing is blocked in the kernel exactly as on a
//! hung NFS mount.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const FUSE_LOOKUP: u32 = 1;
const FUSE_FORGET: u32 = 2;
const FUSE_GETATTR: u32 = 3;
const FUSE_OPEN: u32 = 14;
const FUSE_WRITE: u32 = 16;
const FUSE_RELEASE: u32 = 18;
const FUSE_FLUSH: u32 = 25;
const FUSE_INIT: u32 = 26;
const FUSE_INTERRUPT: u32 = 36;
const FUSE_BATCH_FORGET: u32 = 42;
const ROOT: u64 = 1;
const LOG: u64 = 2;
/// The in-header: len, opcode, unique, nodeid, uid, gid, pid, extlen, padding.
const IN_HEADER: usize = 40;

#[derive(Default)]
struct State {
    /// Writes are answered (false: they wait).
    flowing: bool,
    /// Writes waiting for an answer: (unique, size).
    parked: Vec<(u64, u32)>,
    contents: Vec<u8>,
}

/// The mounted filesystem; unmounted (lazily) when dropped, its writes released first.
pub struct HungFs {
    mountpoint: PathBuf,
    state: Arc<(Mutex<State>, Condvar)>,
    device: Arc<File>,
}

impl HungFs {
    /// Mounts it on `mountpoint` (made if missing), writes held.
    pub fn mount(mountpoint: &Path) -> io::Result<HungFs> {
        std::fs::create_dir_all(mountpoint)?;
        let device = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/fuse")?;
        let options = format!(
            "fd={},rootmode=40000,user_id=0,group_id=0,allow_other",
            device.as_raw_fd()
        );
        let source = CString::new("skiff-hung").unwrap();
        let target = CString::new(mountpoint.as_os_str().as_bytes())?;
        let fstype = CString::new("fuse").unwrap();
        let data = CString::new(options).unwrap();
        // SAFETY: mount(2) with NUL-terminated strings that outlive the call.
        let rc = unsafe {
            libc::mount(
                source.as_ptr(),
                target.as_ptr(),
                fstype.as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                data.as_ptr().cast(),
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        let state = Arc::new((Mutex::new(State::default()), Condvar::new()));
        let device = Arc::new(device);
        let (served, dev) = (state.clone(), device.clone());
        std::thread::spawn(move || serve(&dev, &served));
        Ok(HungFs {
            mountpoint: mountpoint.to_path_buf(),
            state,
            device,
        })
    }

    /// The file whose writes hang.
    pub fn file(&self) -> PathBuf {
        self.mountpoint.join("log")
    }

    /// Waits until a write hangs; false if none did within `limit`.
    pub fn wait_for_a_hung_write(&self, limit: Duration) -> bool {
        let (lock, cv) = &*self.state;
        let deadline = Instant::now() + limit;
        let mut s = lock.lock().unwrap();
        while s.parked.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            s = cv.wait_timeout(s, left).unwrap().0;
        }
        true
    }

    /// Answers the waiting writes and every later one.
    pub fn release(&self) {
        let (lock, _) = &*self.state;
        let mut s = lock.lock().unwrap();
        s.flowing = true;
        for (unique, size) in std::mem::take(&mut s.parked) {
            let _ = reply(&self.device, unique, 0, &write_out(size));
        }
    }

    /// What was written so far.
    pub fn contents(&self) -> Vec<u8> {
        self.state.0.lock().unwrap().contents.clone()
    }
}

impl Drop for HungFs {
    fn drop(&mut self) {
        self.release();
        let target = CString::new(self.mountpoint.as_os_str().as_bytes()).unwrap();
        // SAFETY: umount2(2) of our own mount with a NUL-terminated path. Detached: a
        // writer may still hold the file; the serving thread answers it until the
        // last reference goes, then reads ENODEV and ends.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
}

/// Answers the kernel's requests until the connection ends.
fn serve(device: &File, state: &(Mutex<State>, Condvar)) {
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match (&*device).read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(_) => return,
        };
        if n < IN_HEADER {
            continue;
        }
        let req = &buf[..n];
        let opcode = u32_at(req, 4);
        let unique = u64_at(req, 8);
        let node = u64_at(req, 16);
        let body = &req[IN_HEADER..];
        let answer = match opcode {
            FUSE_INIT => Some((0, init_out())),
            FUSE_LOOKUP => {
                let name = body.split(|b| *b == 0).next().unwrap_or_default();
                if node == ROOT && name == b"log" {
                    let size = state.0.lock().unwrap().contents.len() as u64;
                    Some((0, entry_out(LOG, size)))
                } else {
                    Some((-libc::ENOENT, Vec::new()))
                }
            }
            FUSE_GETATTR => {
                let size = state.0.lock().unwrap().contents.len() as u64;
                Some((0, attr_out(node, size)))
            }
            FUSE_OPEN => Some((0, open_out())),
            FUSE_WRITE => {
                let size = u32_at(body, 16);
                let data = &body[40..40 + size as usize];
                let (lock, cv) = state;
                let mut s = lock.lock().unwrap();
                s.contents.extend_from_slice(data);
                if s.flowing {
                    Some((0, write_out(size)))
                } else {
                    s.parked.push((unique, size));
                    cv.notify_all();
                    None
                }
            }
            FUSE_FLUSH | FUSE_RELEASE => Some((0, Vec::new())),
            FUSE_FORGET | FUSE_BATCH_FORGET | FUSE_INTERRUPT => None,
            _ => Some((-libc::ENOSYS, Vec::new())),
        };
        if let Some((error, out)) = answer {
            let _ = reply(device, unique, error, &out);
        }
    }
}

fn reply(device: &File, unique: u64, error: i32, body: &[u8]) -> io::Result<()> {
    let mut out = Vec::with_capacity(16 + body.len());
    out.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
    out.extend_from_slice(&error.to_ne_bytes());
    out.extend_from_slice(&unique.to_ne_bytes());
    out.extend_from_slice(body);
    (&*device).write_all(&out)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(b[at..at + 8].try_into().unwrap())
}

/// fuse_init_out, protocol 7.31: no optional features.
fn init_out() -> Vec<u8> {
    let mut o = Vec::new();
    o.extend_from_slice(&7u32.to_ne_bytes()); // major
    o.extend_from_slice(&31u32.to_ne_bytes()); // minor
    o.extend_from_slice(&0u32.to_ne_bytes()); // max_readahead
    o.extend_from_slice(&0u32.to_ne_bytes()); // flags
    o.extend_from_slice(&16u16.to_ne_bytes()); // max_background
    o.extend_from_slice(&12u16.to_ne_bytes()); // congestion_threshold
    o.extend_from_slice(&(128u32 * 1024).to_ne_bytes()); // max_write
    o.extend_from_slice(&1u32.to_ne_bytes()); // time_gran
    o.extend_from_slice(&32u16.to_ne_bytes()); // max_pages
    o.extend_from_slice(&0u16.to_ne_bytes()); // map_alignment
    o.extend_from_slice(&0u32.to_ne_bytes()); // flags2
    o.extend_from_slice(&[0u8; 28]); // unused
    o
}

/// fuse_attr: the root directory or the log file, root's, mode 0755 / 0644.
fn attr(node: u64, size: u64) -> Vec<u8> {
    let mode = if node == ROOT {
        libc::S_IFDIR | 0o755
    } else {
        libc::S_IFREG | 0o644
    };
    let mut a = Vec::new();
    for v in [node, size, size.div_ceil(512), 0, 0, 0] {
        a.extend_from_slice(&v.to_ne_bytes()); // ino size blocks atime mtime ctime
    }
    for v in [0u32, 0, 0, mode, 1, 0, 0, 0, 4096, 0] {
        a.extend_from_slice(&v.to_ne_bytes()); // nsecs, mode nlink uid gid rdev blksize flags
    }
    a
}

fn entry_out(node: u64, size: u64) -> Vec<u8> {
    let mut o = Vec::new();
    for v in [node, 0u64, 0, 0] {
        o.extend_from_slice(&v.to_ne_bytes()); // nodeid generation entry_valid attr_valid
    }
    o.extend_from_slice(&[0u8; 8]); // the two nsec fields
    o.extend_from_slice(&attr(node, size));
    o
}

fn attr_out(node: u64, size: u64) -> Vec<u8> {
    let mut o = vec![0u8; 16]; // attr_valid, its nsec, dummy
    o.extend_from_slice(&attr(node, size));
    o
}

/// fuse_open_out: direct I/O, so every write(2) waits for its answer.
fn open_out() -> Vec<u8> {
    let mut o = Vec::new();
    o.extend_from_slice(&0u64.to_ne_bytes()); // fh
    o.extend_from_slice(&1u32.to_ne_bytes()); // FOPEN_DIRECT_IO
    o.extend_from_slice(&0u32.to_ne_bytes());
    o
}

fn write_out(size: u32) -> Vec<u8> {
    let mut o = Vec::new();
    o.extend_from_slice(&size.to_ne_bytes());
    o.extend_from_slice(&0u32.to_ne_bytes());
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs root (mount) and /dev/fuse.
    #[test]
    fn a_write_waits_until_released() {
        // SAFETY: geteuid(2) cannot fail.
        if unsafe { libc::geteuid() } != 0 || !Path::new("/dev/fuse").exists() {
            return;
        }
        let dir = skiff_test_support::bundle::TempDir::new("skiff-hungfs").unwrap();
        let fs = HungFs::mount(&dir.path().join("m")).unwrap();
        let path = fs.file();
        let writer = std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
            f.write_all(b"held").unwrap();
        });
        assert!(fs.wait_for_a_hung_write(Duration::from_secs(5)));
        std::thread::sleep(Duration::from_millis(200));
        assert!(!writer.is_finished(), "the write returned while held");
        fs.release();
        writer.join().unwrap();
        assert_eq!(fs.contents(), b"held");
    }
}
