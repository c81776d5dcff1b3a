//! What /proc says of a process the shim may own: who its parent is and when it began.
//! A pid alone names a process only until it is reaped; with its parent and start time
//! it names it for good, so that a recycled pid is never taken for the process that
//! had it before.

use std::time::Instant;

/// A moment on both clocks this needs: the monotonic one exits are stamped with, and
/// the kernel's boot-time clock, in clock ticks, that process start times are kept in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment {
    pub at: Instant,
    pub boot_ticks: u64,
}

impl Moment {
    pub fn now() -> Moment {
        Moment {
            at: Instant::now(),
            boot_ticks: boot_ticks(),
        }
    }
}

/// The boot-time clock in clock ticks (USER_HZ), as /proc/PID/stat counts start times.
fn boot_ticks() -> u64 {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map(|t| (t.tv_sec() as u64, t.tv_nsec() as u64))
        .unwrap_or((0, 0));
    let hz = ticks_per_second();
    now.0 * hz + now.1 * hz / 1_000_000_000
}

fn ticks_per_second() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100, |v| v as u64)
}

/// The parent pid and start time (clock ticks since boot) of a process, zombies
/// included; None once it is gone.
pub fn parent_and_start(pid: u32) -> Option<(u32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields start after the
    // last ')'. Then: state ppid ... with starttime the 20th field after the name.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ppid = fields.get(1)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((ppid, start))
}

/// Whether `pid` is, now, a child of this shim that began at or after `since`: the
/// process a runtime command started then, not an older one with a recycled pid.
pub fn is_own_child_since(pid: u32, since: Moment) -> bool {
    match parent_and_start(pid) {
        // Start times are whole ticks: one tick of slack for the rounding.
        Some((ppid, start)) => ppid == std::process::id() && start + 1 >= since.boot_ticks,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_started_now_is_ours_and_the_shim_itself_is_not_its_own_child() {
        let since = Moment::now();
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        assert!(is_own_child_since(child.id(), since));
        let later = Moment {
            at: since.at,
            boot_ticks: since.boot_ticks + 10 * ticks_per_second(),
        };
        assert!(
            !is_own_child_since(child.id(), later),
            "a process that began before the moment is not the one asked for"
        );
        assert!(!is_own_child_since(std::process::id(), since));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!is_own_child_since(child.id(), since), "reaped: gone");
    }
}
