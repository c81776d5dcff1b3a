//! A file descriptor that becomes readable when the cgroup's memory controller reports
//! an OOM: on v1 an eventfd registered through `cgroup.event_control`, on v2 an inotify
//! watch on `memory.events`. Callers put it in their own poll loop: no thread here.

use crate::discover::Cgroup;
use std::ffi::CString;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

pub struct OomWatch {
    fd: OwnedFd,
    /// v1 keeps memory.oom_control open: the registration lives as long as it does.
    _control: Option<std::fs::File>,
}

impl OomWatch {
    pub fn new(cgroup: &Cgroup) -> io::Result<OomWatch> {
        let dir = cgroup.memory_dir().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "the cgroup has no memory controller",
            )
        })?;
        match cgroup {
            Cgroup::V1 { .. } => {
                // SAFETY: eventfd returns a new fd or -1.
                let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
                if efd < 0 {
                    return Err(io::Error::last_os_error());
                }
                // SAFETY: efd was just created.
                let fd = unsafe { OwnedFd::from_raw_fd(efd) };
                let control = OpenOptions::new()
                    .read(true)
                    .open(dir.join("memory.oom_control"))?;
                std::fs::write(
                    dir.join("cgroup.event_control"),
                    format!("{} {}", fd.as_raw_fd(), control.as_raw_fd()),
                )?;
                Ok(OomWatch {
                    fd,
                    _control: Some(control),
                })
            }
            Cgroup::V2 { .. } => {
                // SAFETY: inotify_init1 returns a new fd or -1.
                let ifd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
                if ifd < 0 {
                    return Err(io::Error::last_os_error());
                }
                // SAFETY: ifd was just created.
                let fd = unsafe { OwnedFd::from_raw_fd(ifd) };
                let path = CString::new(dir.join("memory.events").as_os_str().as_bytes())
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
                // SAFETY: a valid inotify fd and path.
                if unsafe {
                    libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), libc::IN_MODIFY)
                } < 0
                {
                    return Err(io::Error::last_os_error());
                }
                Ok(OomWatch { fd, _control: None })
            }
        }
    }

    /// Empties the fd after it became readable, so the next event wakes the poll again.
    pub fn drain(&self) {
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: reading into a local buffer from our non-blocking fd.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return;
            }
        }
    }
}

impl std::os::fd::AsFd for OomWatch {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for OomWatch {
    fn as_raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }
}
