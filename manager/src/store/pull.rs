//! Pulling an image: fetched from its registry into the content store
//! (`registry::fetch`), then unpacked and recorded as an import is, one import or pull
//! at a time, within the same limits. Whatever way it ends (an error, a cancel, a client
//! that went away), the blobs it brought that no row names are taken out again, and the
//! layer snapshots it made that no image uses; its image row is written last, so no
//! half image is ever visible.

use super::{namespace, ImageRecord, Store};
use crate::error::{check_name, Result};
use crate::limits::Budget;
use crate::progress::Job;
use crate::registry::fetch::Fetch;
use crate::registry::{Options, Reference, Session};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What a pull did, for metrics and the log.
#[derive(Debug, Default, Clone)]
pub struct PullStats {
    pub received: u64,
}

impl Store {
    pub fn pull(
        &self,
        ns: &str,
        reference: &str,
        options: &Options,
        job: Arc<Job>,
    ) -> (Result<ImageRecord>, PullStats) {
        let mut stats = PullStats::default();
        let result = self.pull_checked(ns, reference, options, job, &mut stats);
        (result, stats)
    }

    fn pull_checked(
        &self,
        ns: &str,
        reference: &str,
        options: &Options,
        job: Arc<Job>,
        stats: &mut PullStats,
    ) -> Result<ImageRecord> {
        let ns = namespace(ns)?;
        let reference = Reference::parse(reference)?;
        let name = reference.to_string();
        check_name("image name", &name, 512)?;
        let session = Session::open(reference, options)?;
        let cancel = job.clone();
        let budget = Budget::new(self.limits.clone(), 0).with_cancel(move || cancel.cancelled());
        let known = |digest: &str| self.namespace_has(ns, digest).unwrap_or(false);
        let fetch = Fetch {
            session: &session,
            store: &self.content,
            budget: &budget,
            known: &known,
            job: &job,
            ingested: Mutex::new(Vec::new()),
            received: AtomicU64::new(0),
        };
        let result = self.ingesting(|ingested| {
            let result = fetch.image().and_then(|image| {
                let layers = job.item("unpacking", image.layers.len() as u64, "unpacking");
                let top = self.unpack(ns, &image, &budget)?;
                job.set(layers, image.layers.len() as u64, "done");
                self.content.sync()?;
                self.record_image(ns, &name, &image, &top)
            });
            ingested.append(&mut fetch.ingested.lock().unwrap());
            result
        });
        stats.received = fetch.received.load(Ordering::Relaxed);
        result
    }
}
