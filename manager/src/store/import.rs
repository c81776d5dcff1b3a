//! Importing an archive: its blobs into the content store, its layers unpacked, an
//! image row per image, all within the import limits. One import runs at a time;
//! collections asked for meanwhile run after it. Whatever way it ends, the blobs it
//! brought that no row names are taken out again, and on failure so is every layer
//! snapshot it made that no image uses.

use super::{namespace, ImageRecord, Store};
use crate::archive::{ArchiveImage, Reader};
use crate::error::{check_name, Error, Result};
use crate::limits::Budget;
use crate::progress::Job;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Store {
    /// `job` shows the archive's bytes read and the layers unpacked, and can cancel.
    pub fn import(
        &self,
        ns: &str,
        path: &Path,
        name: Option<&str>,
        job: Arc<Job>,
    ) -> Result<Vec<ImageRecord>> {
        let ns = namespace(ns)?;
        if let Some(n) = name {
            check_name("image name", n, 512)?;
        }
        let archive_size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let cancel = job.clone();
        let budget =
            Budget::new(self.limits.clone(), archive_size).with_cancel(move || cancel.cancelled());
        self.ingesting(|ingested| self.import_locked(ns, path, name, &budget, ingested, &job))
    }

    /// Runs `work` as the one import or pull under way. Whatever way it ends, the blobs
    /// it ingested (the list it fills) that no row names are taken out again, and after a
    /// failure the layer snapshots no image uses.
    pub(super) fn ingesting<T>(
        &self,
        work: impl FnOnce(&mut Vec<String>) -> Result<T>,
    ) -> Result<T> {
        let mut ingested = Vec::new();
        let result = {
            let _one_at_a_time = self.import_lock.lock().unwrap_or_else(|p| p.into_inner());
            let result = work(&mut ingested);
            if result.is_err() {
                let _ = self.collect_now();
            }
            self.remove_unrecorded(&ingested);
            result
        };
        if self.collect_after_import.load(Ordering::SeqCst) {
            let _ = self.collect();
        }
        result
    }

    fn import_locked(
        &self,
        ns: &str,
        path: &Path,
        name: Option<&str>,
        budget: &Budget,
        ingested: &mut Vec<String>,
        job: &Job,
    ) -> Result<Vec<ImageRecord>> {
        let known = |digest: &str| self.namespace_has(ns, digest).unwrap_or(false);
        let size = budget.source_size();
        let reading = job.item(&path.display().to_string(), size, "reading");
        let read = |n: u64| job.add(reading, n);
        let reader = Reader {
            store: &self.content,
            budget,
            known: &known,
            read: &read,
        };
        let images = reader.read(path, ingested)?;
        job.set(reading, size, "done");
        if name.is_some() && images.len() > 1 {
            return Err(Error::InvalidArgument(format!(
                "{} holds {} images: --name applies to one",
                path.display(),
                images.len()
            )));
        }
        let mut out = Vec::new();
        for image in images {
            let name = image_name(name, &image)?;
            let n = image.layers.len() as u64;
            let unpacking = job.item(&format!("unpacking {name}"), n, "unpacking");
            let top = self.unpack(ns, &image, budget)?;
            job.set(unpacking, n, "done");
            self.content.sync()?;
            out.push(self.record_image(ns, &name, &image, &top)?);
        }
        Ok(out)
    }
}

fn image_name(given: Option<&str>, image: &ArchiveImage) -> Result<String> {
    let name = given
        .map(str::to_string)
        .or_else(|| image.name.clone())
        .ok_or_else(|| {
            Error::InvalidArgument("the archive names no image: give one with --name".into())
        })?;
    check_name("image name", &name, 512)?;
    Ok(name)
}
