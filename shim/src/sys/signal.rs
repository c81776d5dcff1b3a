//! Signals for processes the shim started itself (an exec's process): by pid, which is
//! safe only while the process has not been reaped (the shim's loop is the only reaper).

use std::io;

/// Sends signal number `signal` (any, realtime ones included) to `pid`.
pub fn send(pid: u32, signal: u32) -> io::Result<()> {
    let (pid, signal) = match (libc::pid_t::try_from(pid), libc::c_int::try_from(signal)) {
        (Ok(p), Ok(s)) if p > 0 => (p, s),
        _ => return Err(io::Error::from(io::ErrorKind::InvalidInput)),
    };
    // SAFETY: kill(2) with a positive pid: it names one process, never a group. nix's
    // Signal has no realtime signals, which containerd may ask for.
    if unsafe { libc::kill(pid, signal) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
