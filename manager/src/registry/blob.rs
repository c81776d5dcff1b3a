//! The blobs of an image (its config and layers) into the content store: those the
//! namespace lacks, a few at once, the first failure stopping the others; each resumed
//! with a `Range` request where its connection breaks, metered against the import
//! limits as it streams, and checked against its digest before it is committed.

use super::client::Response;
use super::fetch::Fetch;
use crate::error::{Error, Result};
use oci_spec::image::Descriptor;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Blobs fetched at once.
const WORKERS: usize = 3;
/// Tries of one blob whose connection breaks (each resuming where the last stopped).
const TRIES: u32 = 6;

impl Fetch<'_> {
    /// The blobs not in the namespace yet, fetched by a few workers at once; the
    /// first failure stops the others.
    pub(super) fn blobs(&self, wanted: &[Descriptor]) -> Result<()> {
        let mut todo = Vec::new();
        let mut to_fetch = 0;
        for d in wanted {
            let digest = d.digest().to_string();
            crate::storage::blobs::parse_digest(&digest)?;
            self.budget.source(d.size());
            let name = short(&digest);
            if (self.known)(&digest) && self.store.exists(&digest) {
                let i = self.job.item(&name, d.size(), "exists");
                self.job.set(i, d.size(), "exists");
                continue;
            }
            to_fetch += d.size();
            todo.push((d.clone(), self.job.item(&name, d.size(), "waiting")));
        }
        self.budget.content_fits(to_fetch)?;
        let queue = Mutex::new(todo);
        let failed: Mutex<Option<Error>> = Mutex::new(None);
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            for _ in 0..WORKERS.min(queue.lock().unwrap().len()) {
                s.spawn(|| loop {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Some((d, item)) = queue.lock().unwrap().pop() else {
                        return;
                    };
                    if let Err(e) = self.blob(&d, item, &stop) {
                        stop.store(true, Ordering::SeqCst);
                        failed.lock().unwrap().get_or_insert(e);
                        return;
                    }
                });
            }
        });
        match failed.into_inner().unwrap() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// One blob into the store, resumed with a Range request where the connection
    /// breaks, its digest checked before it is committed.
    fn blob(&self, d: &Descriptor, item: usize, stop: &AtomicBool) -> Result<()> {
        let digest = d.digest().to_string();
        let size = d.size();
        let mut w = self.store.writer()?;
        let mut tries = 0;
        let mut last_error = String::new();
        loop {
            self.cancelled()?;
            if stop.load(Ordering::SeqCst) {
                return Err(Error::Cancelled("stopped: another blob failed".into()));
            }
            if tries == TRIES {
                return Err(Error::Unavailable(format!(
                    "the registry went away while sending blob {digest} ({} of {size} bytes after {TRIES} tries): {last_error}",
                    w.len()
                )));
            }
            if tries > 0 {
                std::thread::sleep(Duration::from_millis(200 * tries as u64));
            }
            tries += 1;
            let from = w.len();
            let headers: Vec<(&str, String)> = if from > 0 {
                vec![("Range", format!("bytes={from}-"))]
            } else {
                vec![]
            };
            self.job.set(item, from, "fetching");
            let (i, mut resp) = match self.get(&format!("/blobs/{digest}"), false, &headers) {
                Ok(r) => r,
                Err(Error::Unavailable(e)) => {
                    last_error = e;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let host = self.session.endpoints[i].host().to_string();
            match resp.status().as_u16() {
                200 if from > 0 => {
                    // The registry ignored the Range: start again.
                    w = self.store.writer()?;
                    self.job.set(item, 0, "fetching");
                }
                200 => {}
                206 => {
                    let range = resp
                        .headers()
                        .get("content-range")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    if !range.starts_with(&format!("bytes {from}-")) {
                        return Err(Error::Corrupt(format!(
                            "{host} resumed blob {digest} at {range:?}, not at byte {from}"
                        )));
                    }
                }
                404 => {
                    return Err(Error::NotFound(format!(
                        "{host} has no blob {digest} that the manifest names"
                    )))
                }
                s => {
                    last_error = format!("{host} answered {s} for blob {digest}");
                    continue;
                }
            }
            match self.stream(&mut resp, &mut w, size, item) {
                Ok(()) if w.len() == size => break,
                Ok(()) => {
                    last_error =
                        format!("{host} ended blob {digest} at {} of {size} bytes", w.len())
                }
                Err(Error::Unavailable(e)) => last_error = e,
                Err(e) => return Err(e),
            }
        }
        w.commit(Some(&digest)).map_err(|e| match e {
            Error::Corrupt(m) => Error::Corrupt(format!("wrong digest from the registry: {m}")),
            other => other,
        })?;
        self.ingested.lock().unwrap().push(digest);
        self.job.set(item, size, "fetched");
        Ok(())
    }

    /// The response's body onto the blob, metered; a broken connection is Unavailable
    /// (the caller resumes), more bytes than the descriptor says is Corrupt.
    fn stream(
        &self,
        resp: &mut Response,
        w: &mut crate::storage::blobs::Ingest,
        size: u64,
        item: usize,
    ) -> Result<()> {
        let mut reader = resp.body_mut().as_reader();
        let mut buf = vec![0u8; 128 * 1024];
        loop {
            // A cancel is seen by the budget, which meters every read below.
            let n = match reader.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::Unavailable(format!("the connection broke: {e}"))),
            };
            if w.len() + n as u64 > size {
                return Err(Error::Corrupt(format!(
                    "the registry sends more than the {size} bytes the manifest gives this blob"
                )));
            }
            self.budget.content(n as u64)?;
            w.write(&buf[..n])?;
            self.job.add(item, n as u64);
            self.received.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

/// `sha256:0123456789ab`, as progress shows a blob.
fn short(digest: &str) -> String {
    digest.chars().take(19).collect()
}
