//! `file://` logs, written beside the loop: write(2) to a file can wait (dirty-page
//! throttling, a hung network filesystem), and the loop serves every container of the
//! pod. The pumps copy into a pipe, as they copy into any FIFO, without ever blocking;
//! a thread of the log's own appends what comes out of the pipe to the file. The thread
//! lives while the log has writers, and its end wakes the loop: the output has drained.

use super::pump::Pumps;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// What the thread reads and writes at a time.
const CHUNK: usize = 64 * 1024;
/// Its stack: it calls read, write and the logger, nothing deep.
const STACK: usize = 128 * 1024;

/// Starts the writer of `file`; returns the write end of its pipe, for the pumps. The
/// output counts as running (`outputs`) until the writer has written the last byte.
pub fn start(
    file: File,
    name: &str,
    outputs: &Arc<AtomicUsize>,
    pumps: &Pumps,
) -> io::Result<OwnedFd> {
    let (from, into) = pipe()?;
    let (done_watch, done) = pipe()?;
    pumps.watch_end(done_watch)?;
    outputs.fetch_add(1, Ordering::SeqCst);
    let running = outputs.clone();
    let shown = name.to_string();
    let spawned = std::thread::Builder::new()
        .name("skiff-log-file".into())
        .stack_size(STACK)
        .spawn(move || {
            append(from, file, &shown);
            running.fetch_sub(1, Ordering::SeqCst);
            // Closing it is the loop's wake-up.
            drop(done);
        });
    if let Err(e) = spawned {
        outputs.fetch_sub(1, Ordering::SeqCst);
        return Err(io::Error::new(
            e.kind(),
            format!("starting the writer of log file {name}: {e}"),
        ));
    }
    Ok(into)
}

/// Appends everything read from `from` to `file` until every writer of the pipe has
/// closed it. After a failed write the rest is read and dropped, so that the container
/// never blocks on a full pipe.
fn append(from: OwnedFd, mut file: File, name: &str) {
    let mut buf = vec![0u8; CHUNK];
    let mut failed = false;
    loop {
        let n = match nix::unistd::read(&from, &mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                log::warn!("reading output for log file {name}: {e}");
                return;
            }
        };
        if failed {
            continue;
        }
        if let Err(e) = file.write_all(&buf[..n]) {
            log::warn!("writing log file {name}: {e}; the rest of the output is dropped");
            failed = true;
        }
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?)
}
