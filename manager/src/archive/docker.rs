//! `docker save`: a manifest.json list of {Config, RepoTags, Layers} by path in the
//! archive. An OCI manifest is made for each image and stored, so both forms end up
//! alike.

use super::{
    json, normalize_name, ArchiveImage, View, OCI_CONFIG, OCI_LAYER, OCI_LAYER_GZIP, OCI_MANIFEST,
};
use crate::error::{Error, Result};
use crate::storage::blobs::digest_of;
use serde_json::Value;
use std::io::Read;

impl View<'_> {
    pub(super) fn docker(
        &self,
        manifest: &[u8],
        ingested: &mut Vec<String>,
    ) -> Result<Vec<ArchiveImage>> {
        let list = json(manifest, "manifest.json")?;
        let mut out = Vec::new();
        for item in list.as_array().cloned().unwrap_or_default() {
            out.push(self.docker_image(&item, ingested)?);
        }
        if out.is_empty() {
            return Err(Error::Corrupt("manifest.json lists no images".into()));
        }
        Ok(out)
    }

    fn by_path(&self, path: &str, what: &str) -> Result<(String, u64)> {
        self.entries
            .by_path
            .get(path)
            .cloned()
            .ok_or_else(|| Error::Corrupt(format!("the archive lacks {what} {path} (truncated?)")))
    }

    fn docker_image(&self, item: &Value, ingested: &mut Vec<String>) -> Result<ArchiveImage> {
        let config_path = item["Config"]
            .as_str()
            .ok_or_else(|| Error::Corrupt("manifest.json: an image has no Config".into()))?;
        let (config_digest, config_size) = self.by_path(config_path, "config")?;
        let paths = item["Layers"].as_array().cloned().unwrap_or_default();
        self.reader.budget.layers(paths.len())?;
        let mut layers = Vec::new();
        for p in paths {
            let (digest, size) = self.by_path(p.as_str().unwrap_or_default(), "layer")?;
            let gz = {
                let mut head = [0u8; 2];
                let n = self
                    .reader
                    .store
                    .open_blob(&digest)?
                    .read(&mut head)
                    .unwrap_or(0);
                n == 2 && head == [0x1f, 0x8b]
            };
            layers.push(serde_json::json!({
                "mediaType": if gz { OCI_LAYER_GZIP } else { OCI_LAYER },
                "digest": digest,
                "size": size,
            }));
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
            "layers": layers,
        });
        let bytes = serde_json::to_vec(&manifest).map_err(|e| Error::Corrupt(e.to_string()))?;
        let digest = digest_of(&bytes);
        self.reader.store.ingest(&bytes[..], Some(&digest))?;
        self.made.borrow_mut().insert(digest.clone());
        ingested.push(digest.clone());
        let name = item["RepoTags"]
            .as_array()
            .and_then(|t| t.first())
            .and_then(|t| t.as_str())
            .map(normalize_name);
        let blobs = vec![(digest.clone(), bytes.len() as u64, OCI_MANIFEST.to_string())];
        self.image_of(name, &digest, OCI_MANIFEST, blobs)
    }
}
