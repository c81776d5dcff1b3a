//! The kernel's log (`/dev/kmsg`), read for one fact: which pids the OOM killer killed.
//! The kernel logs "Killed process PID (COMM) ..." for every OOM kill, memory cgroup or
//! global, the moment it sends the SIGKILL. A container's init that died of SIGKILL after
//! its cgroup was removed (systemd removes an emptied scope, and its memory.events, before
//! the shim may read it) was OOM-killed exactly when such a record names its pid: the pid
//! names the init from its start until the shim reaps it, so the record is this
//! container's, never another cgroup's.
//!
//! The log is opened at its end, so only records logged since are read; each record's
//! sequence number says whether it came after a given mark (a watch's start). Reading
//! needs CAP_SYSLOG where `kernel.dmesg_restrict` is set; without it no kill is found
//! (an OOM may go untold, none is told falsely).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;

/// OOM kills remembered between reads, at the most.
const KILLS_KEPT: usize = 64;
/// A record is at most this long (the kernel's own limit is 8 KiB with its prefix).
const RECORD_MAX: usize = 16 * 1024;

#[derive(Default)]
pub struct OomKillLog {
    file: Option<File>,
    /// Opening failed once (logged); not tried again.
    unreadable: bool,
    /// The sequence number of the latest record read.
    last_seq: u64,
    /// (sequence number, pid) of the OOM kills read, oldest first.
    kills: VecDeque<(u64, u32)>,
}

impl OomKillLog {
    /// A mark: kills logged after it are the ones [`OomKillLog::killed_since`] finds.
    /// Opens the log, at its end, the first time.
    pub fn mark(&mut self) -> u64 {
        self.read_new();
        self.last_seq
    }

    /// Whether the kernel logged an OOM kill of `pid` after the mark `since`.
    pub fn killed_since(&mut self, pid: u32, since: u64) -> bool {
        self.read_new();
        self.kills.iter().any(|&(seq, p)| p == pid && seq > since)
    }

    fn read_new(&mut self) {
        if self.file.is_none() && !self.unreadable {
            match open_at_end() {
                Ok(f) => self.file = Some(f),
                Err(e) => {
                    log::warn!("/dev/kmsg: {e}: an OOM kill of an init whose cgroup is already gone cannot be told");
                    self.unreadable = true;
                }
            }
        }
        let Some(mut file) = self.file.take() else {
            return;
        };
        let mut buf = vec![0u8; RECORD_MAX];
        loop {
            // One read, one record.
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.take(&String::from_utf8_lossy(&buf[..n])),
                // Records were overwritten before they were read: the next is the oldest.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // EAGAIN: nothing more for now.
                Err(_) => break,
            }
        }
        self.file = Some(file);
    }

    /// A log that is never opened: records come only through [`OomKillLog::take`].
    #[cfg(test)]
    pub fn unopened() -> OomKillLog {
        OomKillLog {
            unreadable: true,
            ..Default::default()
        }
    }

    /// One record of the log, as read.
    pub(crate) fn take(&mut self, record: &str) {
        let Some((seq, message)) = parse(record) else {
            return;
        };
        self.last_seq = self.last_seq.max(seq);
        if let Some(pid) = killed_pid(message) {
            if self.kills.len() == KILLS_KEPT {
                self.kills.pop_front();
            }
            self.kills.push_back((seq, pid));
        }
    }
}

fn open_at_end() -> io::Result<File> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open("/dev/kmsg")?;
    f.seek(SeekFrom::End(0))?;
    Ok(f)
}

/// The sequence number and message of a record: `PRIO,SEQ,USEC,FLAGS[,...];MESSAGE`,
/// then continuation lines.
fn parse(record: &str) -> Option<(u64, &str)> {
    let (prefix, rest) = record.split_once(';')?;
    let seq = prefix.split(',').nth(1)?.parse().ok()?;
    Some((seq, rest.lines().next().unwrap_or_default()))
}

/// The pid of an OOM killer's "... Killed process PID (COMM) ..." message.
fn killed_pid(message: &str) -> Option<u32> {
    let (_, after) = message.split_once("Killed process ")?;
    let (pid, rest) = after.split_once(' ')?;
    if !rest.starts_with('(') {
        return None;
    }
    pid.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_of_oom_kills_give_their_pid() {
        let memcg = "3,509,37720030,-;Memory cgroup out of memory: Killed process 207 (sh) total-vm:46108kB, anon-rss:31780kB, file-rss:1416kB, shmem-rss:0kB, UID:0 pgtables:124kB oom_score_adj:0\n";
        let (seq, message) = parse(memcg).unwrap();
        assert_eq!((seq, killed_pid(message)), (509, Some(207)));
        let global =
            "3,77,1,-;Out of memory: Killed process 4242 (java) total-vm:1kB\n SUBSYSTEM=x\n";
        assert_eq!(
            parse(global).map(|(s, m)| (s, killed_pid(m))),
            Some((77, Some(4242)))
        );
        for other in [
            "6,458,23632173,-;oom-kill:constraint=CONSTRAINT_MEMCG,task=sh,pid=202,uid=0\n",
            "6,460,1,-;oom_reaper: reaped process 202 (sh), now anon-rss:0kB\n",
            "6,461,1,-;Killed process tracking enabled\n",
        ] {
            let (_, message) = parse(other).unwrap();
            assert_eq!(killed_pid(message), None, "{other}");
        }
        assert_eq!(parse("no prefix"), None);
    }

    #[test]
    fn only_kills_after_the_mark_count() {
        let mut log = OomKillLog::unopened();
        log.take("3,10,1,-;Memory cgroup out of memory: Killed process 5 (a) x\n");
        let mark = log.mark();
        assert_eq!(mark, 10);
        assert!(!log.killed_since(5, mark), "killed before the mark");
        log.take("6,11,1,-;something else\n");
        log.take("3,12,1,-;Memory cgroup out of memory: Killed process 6 (b) x\n");
        assert!(log.killed_since(6, mark));
        assert!(!log.killed_since(7, mark), "another pid");
        let later = log.mark();
        assert!(!log.killed_since(6, later), "told once: a later mark");
    }
}
