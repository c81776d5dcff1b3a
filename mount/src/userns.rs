//! A user namespace made from an [`IdMapping`], for `mount_setattr(MOUNT_ATTR_IDMAP)`,
//! which takes the namespace as a file descriptor. A namespace needs a process to be
//! made in: a child is cloned into a new one, its `uid_map` and `gid_map` are written,
//! its `/proc/PID/ns/user` is opened, and the child is killed and reaped. The open file
//! keeps the namespace alive.
//!
//! The child is cloned with no exit signal: a process-wide `waitpid(-1)` (the shim's
//! reaper) only reaps children that signal SIGCHLD, so this one is reaped here and
//! nowhere else, and its pid cannot be reused while the maps are written.

use crate::idmap::IdMapping;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;

/// A user namespace holding `mapping`.
pub fn user_namespace(mapping: &IdMapping) -> io::Result<OwnedFd> {
    let child = Holder::clone_into_new_namespace()?;
    let proc = format!("/proc/{}", child.pid);
    for (file, ranges) in [("uid_map", &mapping.uids), ("gid_map", &mapping.gids)] {
        // One write: the kernel takes a map only whole, once.
        std::fs::write(format!("{proc}/{file}"), IdMapping::map_file(ranges)).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("writing the {file} of an idmapped mount's user namespace: {e}"),
            )
        })?;
    }
    let ns = File::open(format!("{proc}/ns/user")).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("opening the user namespace of {proc}: {e}"),
        )
    })?;
    Ok(ns.into())
}

/// The child that holds a new user namespace open until dropped: then it is killed and
/// reaped.
struct Holder {
    pid: libc::pid_t,
}

impl Holder {
    fn clone_into_new_namespace() -> io::Result<Holder> {
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: clone_args is plain data; all-zero is "no stack, no pidfd, no tls":
        // the child runs on a copy of this thread's stack, as after fork.
        let mut args: libc::clone_args = unsafe { std::mem::zeroed() };
        args.flags = libc::CLONE_NEWUSER as u64;
        // No exit signal: see the module's comment.
        args.exit_signal = 0;
        // SAFETY: clone3 with a valid clone_args of its own size. The child only makes
        // raw system calls (async-signal-safe) and never returns from `hold`.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &mut args as *mut libc::clone_args,
                std::mem::size_of::<libc::clone_args>(),
            )
        };
        match ret {
            0 => hold(parent),
            pid if pid > 0 => Ok(Holder {
                pid: pid as libc::pid_t,
            }),
            _ => {
                let e = io::Error::last_os_error();
                Err(io::Error::new(
                    e.kind(),
                    format!("making a user namespace for an idmapped mount: {e}"),
                ))
            }
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        // SAFETY: kill and waitpid of our own unreaped child: its pid cannot have been
        // reused. __WALL reaps a child that sends no exit signal.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            let mut status = 0;
            while libc::waitpid(self.pid, &mut status, libc::__WALL) < 0
                && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
            {}
        }
    }
}

/// The child: waits to be killed, and dies with the thread that cloned it if that
/// thread goes first.
fn hold(parent: libc::pid_t) -> ! {
    // SAFETY: raw system calls only, in a copy of a possibly multithreaded process.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != parent {
            libc::_exit(1);
        }
        loop {
            libc::pause();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idmap::IdRange;
    use std::os::fd::AsRawFd;

    #[test]
    fn the_namespace_holds_the_mapping_and_no_child_is_left() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: making a user namespace with any mapping needs root");
            return;
        }
        let range = |container, host, size| IdRange {
            container,
            host,
            size,
        };
        let mapping = IdMapping {
            uids: vec![range(0, 100000, 1000), range(1000, 300000, 10)],
            gids: vec![range(0, 200000, 65536)],
        };
        let before = children();
        let ns = user_namespace(&mapping).unwrap();
        assert_eq!(children(), before, "the namespace's child was reaped");
        // The fd is a user namespace: NS_GET_USERNS... is not needed; its link says so.
        let link = std::fs::read_link(format!("/proc/self/fd/{}", ns.as_raw_fd())).unwrap();
        assert!(link.to_string_lossy().starts_with("user:["), "{link:?}");
        assert_ne!(
            link,
            std::fs::read_link("/proc/self/ns/user").unwrap(),
            "a new namespace"
        );
        let overlapping = IdMapping {
            uids: vec![range(0, 100000, 10), range(5, 200000, 10)],
            gids: vec![range(0, 100000, 10)],
        };
        let err = user_namespace(&overlapping).unwrap_err();
        assert!(err.to_string().contains("uid_map"), "{err}");
        assert_eq!(children(), before, "no child is left after a failure");
    }

    /// Children of this process (every thread's), from /proc.
    fn children() -> Vec<String> {
        let mut out = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            out.extend(list.split_whitespace().map(str::to_string));
        }
        out.sort();
        out
    }
}
