//! A process's streams: stdout and stderr from the container's pipes (or pty master)
//! to where the manager wants them, stdin the other way, each a pump run by the shim's
//! event loop.

use super::pump::{Copy, Pumps};
use super::transfer::Transfer;
use super::uri::{self, Output};
use super::{fifo, file_sink, logger};
use skiff_oci_runtime::Stdio3;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The streams a manager named for a process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamPaths {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// The streams of one container process, held by the shim.
pub struct ProcessIo {
    pub paths: StreamPaths,
    pumps: Arc<Pumps>,
    /// Output copies still running; an exit is reported once they have drained.
    outputs: Arc<AtomicUsize>,
    /// The copy into the container's stdin, ended when stdin should close.
    stdin: Option<u64>,
    /// The pty master of a terminal process, for resizing.
    console: Option<OwnedFd>,
}

/// Who a process's output belongs to, for logging binaries.
pub struct Owner<'a> {
    pub container_id: &'a str,
    pub namespace: &'a str,
    /// uid and gid for the container's pipe ends (runtime option IoUid/IoGid).
    pub io_ids: Option<(u32, u32)>,
}

impl ProcessIo {
    fn empty(paths: StreamPaths, pumps: &Arc<Pumps>) -> ProcessIo {
        ProcessIo {
            paths,
            pumps: pumps.clone(),
            outputs: Arc::new(AtomicUsize::new(0)),
            stdin: None,
            console: None,
        }
    }

    /// Pipes for a process without a terminal. Returns the container's ends, for the
    /// runtime's create or exec.
    pub fn pipes(
        paths: StreamPaths,
        owner: &Owner,
        pumps: &Arc<Pumps>,
    ) -> io::Result<(ProcessIo, Stdio3)> {
        let stdout = uri::parse(&paths.stdout).map_err(invalid)?;
        let stderr = uri::parse(&paths.stderr).map_err(invalid)?;
        let mut io = ProcessIo::empty(paths, pumps);
        let mut stdio = Stdio3::default();

        if let Output::Binary {
            path,
            args,
            strict_ready,
        } = &stdout
        {
            // A logging binary takes both streams.
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            chown(&out_w, owner.io_ids)?;
            chown(&err_w, owner.io_ids)?;
            logger::start(
                &logger::Logger {
                    path,
                    args,
                    strict_ready: *strict_ready,
                },
                owner.container_id,
                owner.namespace,
                out_r,
                err_r,
            )?;
            stdio.stdout = Some(out_w);
            stdio.stderr = Some(err_w);
        } else {
            // stdout and stderr to one file:// log share its writer.
            let mut log = None;
            for (target, slot, name) in [
                (&stdout, &mut stdio.stdout, "stdout"),
                (&stderr, &mut stdio.stderr, "stderr"),
            ] {
                let Some(target) = io.open_target(target, name, &mut log)? else {
                    continue;
                };
                let (r, w) = pipe()?;
                chown(&w, owner.io_ids)?;
                *slot = Some(w);
                io.start_output(r, target, Transfer::Splice)?;
            }
        }
        if !io.paths.stdin.is_empty() {
            let (r, w) = pipe()?;
            chown(&r, owner.io_ids)?;
            stdio.stdin = Some(r);
            io.start_stdin(w, Transfer::Splice)?;
        }
        Ok((io, stdio))
    }

    /// Copies for a terminal process, once the runtime has sent its pty master. The
    /// terminal merges stderr into stdout.
    pub fn terminal(
        paths: StreamPaths,
        master: OwnedFd,
        pumps: &Arc<Pumps>,
    ) -> io::Result<ProcessIo> {
        let stdout = uri::parse(&paths.stdout).map_err(invalid)?;
        if matches!(stdout, Output::Binary { .. }) {
            return Err(invalid(
                "a terminal's output cannot go to a logging binary".into(),
            ));
        }
        let mut io = ProcessIo::empty(paths, pumps);
        if let Some(target) = io.open_target(&stdout, "stdout", &mut None)? {
            io.start_output(master.try_clone()?, target, Transfer::Buffered)?;
        }
        if !io.paths.stdin.is_empty() {
            io.start_stdin(master.try_clone()?, Transfer::Buffered)?;
        }
        io.console = Some(master);
        Ok(io)
    }

    fn start_output(
        &mut self,
        source: OwnedFd,
        target: OwnedFd,
        transfer: Transfer,
    ) -> io::Result<()> {
        self.pumps.add(Copy {
            source,
            target,
            transfer,
            outputs: Some(self.outputs.clone()),
            input: false,
            keeper: None,
        })?;
        Ok(())
    }

    fn start_stdin(&mut self, target: OwnedFd, transfer: Transfer) -> io::Result<()> {
        let stdin = self.paths.stdin.clone();
        let fifo = fifo::open_input(Path::new(&stdin))
            .map_err(|e| annotate(e, &format!("opening stdin {stdin}")))?;
        self.stdin = Some(self.pumps.add(Copy {
            source: fifo.reader,
            target,
            transfer,
            outputs: None,
            input: true,
            keeper: Some(fifo.keeper),
        })?);
        Ok(())
    }

    /// Where an output goes: a FIFO, or the pipe of a log file's writer (`log` holds
    /// the one already started for this process, which the other stream may share).
    fn open_target(
        &self,
        target: &Output,
        name: &str,
        log: &mut Option<(PathBuf, OwnedFd)>,
    ) -> io::Result<Option<OwnedFd>> {
        match target {
            Output::None => Ok(None),
            Output::Fifo(p) => fifo::open_output(p)
                .map(Some)
                .map_err(|e| annotate(e, &format!("opening {name} {}", p.display()))),
            Output::File(p) => {
                if let Some((path, into)) = log.as_ref().filter(|(path, _)| path == p) {
                    debug_assert_eq!(path, p);
                    return into.try_clone().map(Some);
                }
                let shown = p.display().to_string();
                if let Some(dir) = p.parent() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| annotate(e, &format!("making the directory of {shown}")))?;
                }
                let file = fifo::open_log_file(p)
                    .map_err(|e| annotate(e, &format!("opening log file {shown}")))?;
                let into = file_sink::start(file, &shown, &self.outputs, &self.pumps)?;
                *log = Some((p.clone(), into.try_clone()?));
                Ok(Some(into))
            }
            Output::Binary { .. } => Err(invalid(format!(
                "{name} cannot go to a logging binary unless stdout does"
            ))),
        }
    }

    /// Whether the container's output has been copied to the end (every writer of the
    /// pipes has closed them).
    pub fn output_drained(&self) -> bool {
        self.outputs.load(Ordering::SeqCst) == 0
    }

    /// Closes the container's stdin as the manager asks (CloseIO): once what its
    /// writers put in the FIFO has been passed on and the last of them has closed it.
    pub fn close_stdin(&mut self) {
        if let Some(id) = self.stdin {
            self.pumps.close_input(id);
        }
    }

    /// Ends the copy into stdin now (the process is gone): nothing more will be read.
    pub fn stop_stdin(&mut self) {
        if let Some(id) = self.stdin.take() {
            self.pumps.finish(id);
        }
    }

    /// Whether the process has a terminal (a pty master the shim holds).
    pub fn has_terminal(&self) -> bool {
        self.console.is_some()
    }

    /// Sets the terminal's window size.
    pub fn resize(&self, width: u32, height: u32) -> io::Result<()> {
        let console = self.console.as_ref().ok_or_else(|| {
            io::Error::new(io::ErrorKind::Unsupported, "the process has no terminal")
        })?;
        let size = libc::winsize {
            ws_row: height as u16,
            ws_col: width as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ with a valid winsize on our pty master.
        if unsafe { libc::ioctl(console.as_raw_fd(), libc::TIOCSWINSZ, &size) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for ProcessIo {
    fn drop(&mut self) {
        self.stop_stdin();
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

fn annotate(e: io::Error, context: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{context}: {e}"))
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?)
}

fn chown(fd: &OwnedFd, owner: Option<(u32, u32)>) -> io::Result<()> {
    if let Some((uid, gid)) = owner {
        nix::unistd::fchown(
            fd,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
        )
        .map_err(|e| annotate(e.into(), "chown of a stdio pipe"))?;
    }
    Ok(())
}
