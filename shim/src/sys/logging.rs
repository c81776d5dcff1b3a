//! The shim's log goes to the `log` FIFO containerd opens in the bundle (it copies what
//! it reads into its own log), in logfmt like containerd's shims. A manager that is not
//! reading loses lines rather than stalling the shim.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Mutex;

struct FifoLogger {
    out: Mutex<Option<File>>,
    level: log::LevelFilter,
    /// The runtime name containerd knows the shim by, on every line.
    runtime: &'static str,
}

impl log::Log for FifoLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= self.level && metadata.target().starts_with("containerd_shim")
            || metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut out = self.out.lock().unwrap();
        if let Some(f) = out.as_mut() {
            let level = record.level().as_str().to_ascii_lowercase();
            let msg = record.args().to_string().replace('"', "\\\"");
            let _ = writeln!(f, "level={level} msg=\"{msg}\" runtime={}", self.runtime);
        }
    }

    fn flush(&self) {}
}

/// Logs to `./log`. Opened read-write, the FIFO never refuses the shim for want of a
/// reader: lines wait there until containerd opens its end, and are dropped only when
/// the FIFO is full.
pub fn init(debug: bool, runtime: &'static str) {
    let out = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open("log")
        .ok();
    let level = if debug {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Info
    };
    let logger = Box::new(FifoLogger {
        out: Mutex::new(out),
        level,
        runtime,
    });
    if log::set_boxed_logger(logger).is_ok() {
        log::set_max_level(level);
    }
}
