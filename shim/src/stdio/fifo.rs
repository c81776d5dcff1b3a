//! Opening the manager's stdio FIFOs without depending on when the other side opens them.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Opens an output FIFO for the shim to write to. A FIFO is opened read-write, which
/// never blocks and never fails for want of a reader: the manager may open its end
/// later, or go away and come back, without the copy seeing EPIPE. A path that is not a
/// FIFO is appended to as a file.
pub fn open_output(path: &Path) -> io::Result<File> {
    let is_fifo = std::fs::metadata(path)
        .map(|m| m.file_type().is_fifo())
        .unwrap_or(false);
    let mut opts = OpenOptions::new();
    if is_fifo {
        opts.read(true).write(true);
    } else {
        opts.append(true).create(true).mode(0o600);
    }
    opts.custom_flags(libc::O_CLOEXEC).open(path)
}

/// Opens an input FIFO for reading without blocking: until a writer has ever opened it,
/// Linux reports neither data nor hang-up on it, so a poll on it waits for the manager.
pub fn open_input(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
}
