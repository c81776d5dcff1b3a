//! A container's `state.json` as this process reads and writes it through libcontainer.
//!
//! libcontainer saves the file by truncating it and writing it again in place. Two
//! saves at once (a Kill and the kill of what an init left running, which containerd's
//! CRI sends together when a pod stops) can leave it mixed for good, and a load during
//! a save reads half a file ("EOF while parsing"). So operations that save take the
//! container's [`Writer`] turn, one at a time in this process, and loads retry a file
//! caught half-written. (Creates save from their forked helper, beyond any lock here:
//! the retry covers a load during one.)

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// The containers whose state a thread of this process is saving. Process-wide: the
/// shim makes a driver per container, and two drivers over one root must share it.
static SAVING: Saving = Saving {
    busy: Mutex::new(Vec::new()),
    freed: Condvar::new(),
};

/// How long a Kill waits for another operation's turn: a Start runs the poststart
/// hooks inside its turn, and a hung hook must not keep a Kill from the container (the
/// Go shim's Kill never waits behind a hung runtime command either). Past it the Kill
/// goes ahead and takes the risk of a mixed file.
pub const KILL_PATIENCE: Duration = Duration::from_secs(1);

/// How long a load retries a file that does not parse: a save is one small write
/// after the truncation, so a reader sees the whole file again within microseconds.
const TORN_RETRY: Duration = Duration::from_millis(200);

struct Saving {
    /// A handful at most: the containers of one pod.
    busy: Mutex<Vec<PathBuf>>,
    freed: Condvar,
}

/// The turn to save one container's state; given back when dropped.
pub struct Writer {
    dir: Option<PathBuf>,
}

/// Waits for the turn to save the state in `dir` (no longer than `patience` when it is
/// given: then the writer holds no turn).
pub fn writer(dir: &Path, patience: Option<Duration>) -> Writer {
    let deadline = patience.map(|p| Instant::now() + p);
    let mut busy = SAVING.busy.lock().unwrap_or_else(|e| e.into_inner());
    while busy.iter().any(|d| d == dir) {
        busy = match deadline {
            None => SAVING.freed.wait(busy).unwrap_or_else(|e| e.into_inner()),
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    log::warn!("{}: saving its state without waiting longer", dir.display());
                    return Writer { dir: None };
                }
                SAVING
                    .freed
                    .wait_timeout(busy, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
        };
    }
    busy.push(dir.to_path_buf());
    Writer {
        dir: Some(dir.to_path_buf()),
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            SAVING
                .busy
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|d| *d != dir);
            SAVING.freed.notify_all();
        }
    }
}

/// Runs `load` again while it fails because the file does not parse, for a little
/// while: that is a save in progress, not a broken container.
pub fn load_whole<T, E>(
    mut load: impl FnMut() -> Result<T, E>,
    is_torn: impl Fn(&E) -> bool,
) -> Result<T, E> {
    let deadline = Instant::now() + TORN_RETRY;
    loop {
        match load() {
            Err(e) if is_torn(&e) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn writers_of_one_container_take_turns_and_others_do_not_wait() {
        let dir = PathBuf::from("/nonexistent/turns-a");
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (dir, inside, most) = (dir.clone(), inside.clone(), most.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let _turn = writer(&dir, None);
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_micros(100));
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        // Another container's turn is free meanwhile.
        let started = Instant::now();
        drop(writer(
            Path::new("/nonexistent/turns-b"),
            Some(Duration::ZERO),
        ));
        assert!(started.elapsed() < Duration::from_millis(100));
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1, "two writers at once");
    }

    #[test]
    fn a_patient_writer_goes_ahead_after_its_patience() {
        let dir = Path::new("/nonexistent/patience");
        let held = writer(dir, None);
        let started = Instant::now();
        let late = writer(dir, Some(Duration::from_millis(50)));
        let waited = started.elapsed();
        assert!(late.dir.is_none(), "it holds no turn");
        assert!(waited >= Duration::from_millis(50), "{waited:?}");
        drop(late);
        drop(held);
        assert!(writer(dir, Some(Duration::ZERO)).dir.is_some());
    }

    #[test]
    fn a_load_retries_a_torn_file_but_not_other_errors() {
        let mut calls = 0;
        let got: Result<u32, &str> = load_whole(
            || {
                calls += 1;
                if calls < 3 {
                    Err("torn")
                } else {
                    Ok(7)
                }
            },
            |e| *e == "torn",
        );
        assert_eq!((got, calls), (Ok(7), 3));
        let mut calls = 0;
        let got: Result<u32, &str> = load_whole(
            || {
                calls += 1;
                Err("missing")
            },
            |e| *e == "torn",
        );
        assert_eq!((got, calls), (Err("missing"), 1));
    }
}
