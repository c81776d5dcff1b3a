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

/// The crates whose info and debug lines the shim writes: its own code, whichever binary
/// it is linked into. Other crates (libcontainer's, say) reach the log from warnings up.
const OURS: &[&str] = &[
    "containerd_shim_skiff_v2",
    "containerd_shim_skiff_youki_v2",
    "skiff_shim",
    "runc_driver",
    "skiff_oci_runtime",
    "youki_driver",
    "skiff_cgroups",
    "skiff_mount",
];

/// A line's target is a module path: `crate::module::...`, or the crate alone.
fn is_ours(target: &str) -> bool {
    let krate = target.split("::").next().unwrap_or(target);
    OURS.contains(&krate)
}

/// Whether a line at `level` from `target` is written when the shim logs at `max`.
fn keeps(max: log::LevelFilter, level: log::Level, target: &str) -> bool {
    level <= log::Level::Warn || (level <= max && is_ours(target))
}

impl log::Log for FifoLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        keeps(self.level, metadata.level(), metadata.target())
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

#[cfg(test)]
mod tests {
    use super::keeps;
    use log::{Level, LevelFilter};

    #[test]
    fn the_shims_own_info_and_debug_lines_are_kept_at_their_level() {
        let target = "skiff_shim::cli::serve";
        assert!(keeps(LevelFilter::Info, Level::Info, target));
        assert!(!keeps(LevelFilter::Info, Level::Debug, target));
        assert!(keeps(LevelFilter::Debug, Level::Debug, target));
        assert!(keeps(LevelFilter::Debug, Level::Debug, "runc_driver"));
        assert!(keeps(LevelFilter::Debug, Level::Info, "youki_driver::ops"));
    }

    #[test]
    fn other_crates_reach_the_log_from_warnings_up() {
        assert!(!keeps(
            LevelFilter::Debug,
            Level::Debug,
            "libcontainer::process"
        ));
        assert!(!keeps(LevelFilter::Debug, Level::Info, "skiff_shimmer"));
        assert!(keeps(
            LevelFilter::Info,
            Level::Warn,
            "libcontainer::process"
        ));
        assert!(keeps(LevelFilter::Info, Level::Error, "anything"));
    }
}
