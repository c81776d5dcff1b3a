//! The OCI image layout: `index.json` lists images; a descriptor leads through nested
//! indexes (up to the index depth limit) to the manifest for this machine's platform;
//! a manifest names its config and layers. Also the manifest reading that the docker
//! form shares.

use super::{
    json, ArchiveImage, Layer, View, DOCKER_LIST, DOCKER_MANIFEST, OCI_CONFIG, OCI_INDEX,
    OCI_LAYER, OCI_MANIFEST,
};
use crate::error::{Error, Result};
use serde_json::Value;

type Blobs = Vec<(String, u64, String)>;

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

impl View<'_> {
    pub(super) fn oci(&self, index: &[u8]) -> Result<Vec<ArchiveImage>> {
        let index = json(index, "index.json")?;
        let mut out = Vec::new();
        for desc in index["manifests"].as_array().cloned().unwrap_or_default() {
            let annotations = &desc["annotations"];
            let name = annotations["io.containerd.image.name"]
                .as_str()
                .or_else(|| annotations["org.opencontainers.image.ref.name"].as_str())
                .map(str::to_string);
            let mut blobs = Vec::new();
            let (digest, media) = self.pick_manifest(desc, &mut blobs)?;
            out.push(self.image_of(name, &digest, &media, blobs)?);
        }
        if out.is_empty() {
            return Err(Error::Corrupt("index.json lists no images".into()));
        }
        Ok(out)
    }

    /// Follows indexes down to the manifest for this machine's platform (or the first),
    /// one level at a time, at most the index depth limit deep.
    fn pick_manifest(&self, mut desc: Value, blobs: &mut Blobs) -> Result<(String, String)> {
        let mut depth = 0;
        loop {
            let digest = desc["digest"]
                .as_str()
                .ok_or_else(|| Error::Corrupt("a descriptor has no digest".into()))?
                .to_string();
            let media = desc["mediaType"]
                .as_str()
                .unwrap_or(OCI_MANIFEST)
                .to_string();
            blobs.push((
                digest.clone(),
                desc["size"].as_u64().unwrap_or(0),
                media.clone(),
            ));
            if media != OCI_INDEX && media != DOCKER_LIST {
                return Ok((digest, media));
            }
            depth += 1;
            self.reader.budget.index_depth(depth)?;
            let index = self.blob_json(&digest, "index")?;
            let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
            desc = manifests
                .iter()
                .find(|m| {
                    m["platform"]["architecture"] == host_arch() && m["platform"]["os"] == "linux"
                })
                .or_else(|| manifests.first())
                .cloned()
                .ok_or_else(|| Error::Corrupt(format!("index {digest} lists no manifests")))?;
        }
    }

    pub(super) fn image_of(
        &self,
        name: Option<String>,
        manifest_digest: &str,
        media: &str,
        mut blobs: Blobs,
    ) -> Result<ArchiveImage> {
        if media != OCI_MANIFEST && media != DOCKER_MANIFEST {
            return Err(Error::Corrupt(format!(
                "unsupported manifest type {media:?}"
            )));
        }
        let manifest = self.blob_json(manifest_digest, "manifest")?;
        let config_digest = manifest["config"]["digest"]
            .as_str()
            .ok_or_else(|| Error::Corrupt(format!("manifest {manifest_digest} has no config")))?
            .to_string();
        let listed = manifest["layers"].as_array().cloned().unwrap_or_default();
        self.reader.budget.layers(listed.len())?;
        let config = self.blob_json(&config_digest, "image config")?;
        blobs.push((
            config_digest.clone(),
            manifest["config"]["size"].as_u64().unwrap_or(0),
            OCI_CONFIG.into(),
        ));
        let mut layers = Vec::new();
        for l in listed {
            let digest = l["digest"]
                .as_str()
                .ok_or_else(|| Error::Corrupt("a layer has no digest".into()))?
                .to_string();
            self.usable(&digest, "layer")?;
            let size = l["size"].as_u64().unwrap_or(0);
            let media = l["mediaType"].as_str().unwrap_or(OCI_LAYER).to_string();
            blobs.push((digest.clone(), size, media));
            layers.push(Layer { digest, size });
        }
        let diff_ids = super::string_list(&config["rootfs"]["diff_ids"]);
        if diff_ids.len() != layers.len() {
            return Err(Error::Corrupt(format!(
                "the config lists {} layer diff ids for {} layers",
                diff_ids.len(),
                layers.len()
            )));
        }
        Ok(ArchiveImage {
            name,
            manifest_digest: manifest_digest.to_string(),
            manifest_media_type: media.to_string(),
            config_digest,
            layers,
            diff_ids,
            blobs,
        })
    }
}
