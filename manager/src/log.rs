//! Levelled log lines on stderr: `LEVEL message`, filtered by `--log-level`.

use std::sync::atomic::{AtomicU8, Ordering};

static LEVEL: AtomicU8 = AtomicU8::new(2);

const NAMES: [&str; 4] = ["error", "warn", "info", "debug"];

pub fn set_level(name: &str) -> Result<(), String> {
    let n = NAMES
        .iter()
        .position(|l| *l == name)
        .ok_or_else(|| format!("log level {name:?} is not one of {}", NAMES.join(", ")))?;
    LEVEL.store(n as u8, Ordering::Relaxed);
    Ok(())
}

fn emit(level: u8, msg: &str) {
    if level <= LEVEL.load(Ordering::Relaxed) {
        eprintln!("{} {msg}", NAMES[level as usize]);
    }
}

pub fn error(msg: &str) {
    emit(0, msg)
}
pub fn warn(msg: &str) {
    emit(1, msg)
}
pub fn info(msg: &str) {
    emit(2, msg)
}
pub fn debug(msg: &str) {
    emit(3, msg)
}
