//! Importing an archive: its blobs into the content store, its layers unpacked, an
//! image row per image; on failure, what it brought and nothing references goes again.

use super::{namespace, ImageRecord, Store};
use crate::error::{check_name, Error, Result};
use crate::import;
use std::path::Path;

impl Store {
    pub fn import(&self, ns: &str, path: &Path, name: Option<&str>) -> Result<Vec<ImageRecord>> {
        let ns = namespace(ns)?;
        if let Some(n) = name {
            check_name("image name", n, 512)?;
        }
        let _gc = self.gc_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut ingested = Vec::new();
        let result = self.import_locked(ns, path, name, &mut ingested);
        if result.is_err() {
            // Take out what this import brought and nothing references, rows and files.
            let _ = self.collect_locked();
            let referenced = self.referenced_digests().unwrap_or_default();
            for d in ingested.iter().filter(|d| !referenced.contains(*d)) {
                let _ = self.content.remove(d);
            }
        }
        result
    }

    fn import_locked(
        &self,
        ns: &str,
        path: &Path,
        name: Option<&str>,
        ingested: &mut Vec<String>,
    ) -> Result<Vec<ImageRecord>> {
        let images = import::read(path, &self.content, ingested)?;
        if name.is_some() && images.len() > 1 {
            return Err(Error::InvalidArgument(format!(
                "{} holds {} images: --name applies to one",
                path.display(),
                images.len()
            )));
        }
        let mut out = Vec::new();
        for image in images {
            let name = name
                .map(str::to_string)
                .or_else(|| image.name.clone())
                .ok_or_else(|| {
                    Error::InvalidArgument(
                        "the archive names no image: give one with --name".into(),
                    )
                })?;
            check_name("image name", &name, 512)?;
            let top = self.unpack(ns, &image)?;
            out.push(self.record_image(ns, &name, &image, &top)?);
        }
        Ok(out)
    }
}
