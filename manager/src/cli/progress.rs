//! Progress of a pull or an import, drawn from skiffd's `JobProgress` while the request
//! runs on another thread: on a terminal, a line per blob or step (bytes done of its
//! size) and a total, redrawn in place; piped, one line per blob or step as it ends;
//! with --quiet, nothing (it still polls: polling is the heartbeat that keeps skiffd from
//! taking the request for abandoned). Ctrl-C cancels the request (`CancelJob`).

use super::conn::{ctx, Conn, SHORT};
use skiff_protos::manager::{JobItem, JobRequest};
use skiff_protos::manager_ttrpc::ImagesClient;
use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const FINAL: &[&str] = &["exists", "fetched", "done"];

/// Runs `request` with a fresh job id, drawing its progress on stderr until it returns
/// (with the job's lines as it ended, which a fast request never showed a poll).
pub fn watch<T: Send>(
    c: &Conn,
    quiet: bool,
    request: impl FnOnce(String) -> Result<(T, Vec<JobItem>), String> + Send,
) -> Result<T, String> {
    let id = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    // While the request runs, Ctrl-C cancels it; after, the signals do what they did
    // before (a `skiff run` that pulled, then attached, still ends on Ctrl-C).
    let interrupted = Arc::new(AtomicBool::new(false));
    let over = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(sig, interrupted.clone());
        let _ = signal_hook::flag::register_conditional_default(sig, over.clone());
    }
    let api = ImagesClient::new(c.client.clone());
    let job = JobRequest {
        job_id: id.clone(),
        ..Default::default()
    };
    let mut view = View::new(quiet);
    let result = std::thread::scope(|s| {
        let running = s.spawn(|| request(id.clone()));
        let mut cancelled = false;
        while !running.is_finished() {
            if interrupted.load(Ordering::SeqCst) && !cancelled {
                let _ = api.cancel_job(ctx(SHORT), &job);
                cancelled = true;
            }
            match api.job_progress(ctx(SHORT), &job) {
                Ok(p) if !p.over => view.draw(&p.items),
                _ => {}
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        running
            .join()
            .unwrap_or_else(|_| Err("the request thread panicked".into()))
    });
    over.store(true, Ordering::SeqCst);
    match result {
        Ok((value, last)) => {
            if !last.is_empty() {
                view.last = last;
            }
            view.finish();
            Ok(value)
        }
        Err(_) if interrupted.load(Ordering::SeqCst) => Err("cancelled".into()),
        Err(e) => Err(e),
    }
}

struct View {
    quiet: bool,
    terminal: bool,
    drawn: usize,
    told: HashSet<String>,
    last: Vec<JobItem>,
}

impl View {
    fn new(quiet: bool) -> View {
        View {
            quiet,
            terminal: std::io::stderr().is_terminal(),
            drawn: 0,
            told: HashSet::new(),
            last: Vec::new(),
        }
    }

    fn draw(&mut self, items: &[JobItem]) {
        self.last = items.to_vec();
        if self.quiet {
            return;
        }
        let mut err = std::io::stderr().lock();
        if self.terminal {
            if self.drawn > 0 {
                let _ = write!(err, "\x1b[{}A", self.drawn);
            }
            let (mut done, mut total) = (0, 0);
            for i in items {
                let _ = writeln!(err, "\x1b[2K{}", line(i));
                if i.name.starts_with("sha256:") {
                    done += i.done;
                    total += i.total;
                }
            }
            let _ = writeln!(err, "\x1b[2Ktotal {} / {}", bytes(done), bytes(total));
            self.drawn = items.len() + 1;
        } else {
            for i in items {
                if FINAL.contains(&i.state.as_str()) && self.told.insert(i.name.clone()) {
                    let _ = writeln!(err, "{}", line(i));
                }
            }
        }
    }

    /// After the request succeeded: every line ended (piped, a line for each that
    /// ended after the last poll; on a terminal, the last drawing redrawn so).
    fn finish(&mut self) {
        if self.quiet {
            return;
        }
        let ended: Vec<JobItem> = std::mem::take(&mut self.last)
            .into_iter()
            .map(|mut i| {
                if !FINAL.contains(&i.state.as_str()) {
                    i.state = if i.name.starts_with("sha256:") {
                        "fetched"
                    } else {
                        "done"
                    }
                    .into();
                    i.done = i.total;
                }
                i
            })
            .collect();
        self.draw(&ended);
    }
}

fn line(i: &JobItem) -> String {
    if i.name.starts_with("sha256:") {
        format!(
            "{:<20} {:<9} {:>10} / {}",
            i.name,
            i.state,
            bytes(i.done),
            bytes(i.total)
        )
    } else if i.name.starts_with("unpacking") {
        format!(
            "{:<20} {:<9} {} of {} layers",
            i.name, i.state, i.done, i.total
        )
    } else {
        format!(
            "{} {} {} / {}",
            i.name,
            i.state,
            bytes(i.done),
            bytes(i.total)
        )
    }
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}
