//! Reading image archives: an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/...`) or a `docker save` archive (`manifest.json`, a config and a
//! `layer.tar` per layer, or blobs in the newer layout), optionally gzipped as a whole.
//! Every blob goes through the content store, so a blob that does not match its name
//! is refused; the result names, per image, its manifest, config and layers.

use crate::content::{digest_of, ContentStore};
use crate::error::{Error, Result};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

#[derive(Debug, Clone)]
pub struct Layer {
    pub digest: String,
    pub size: u64,
}

#[derive(Debug, Clone)]
pub struct ArchiveImage {
    pub name: Option<String>,
    pub manifest_digest: String,
    pub manifest_media_type: String,
    pub config_digest: String,
    pub layers: Vec<Layer>,
    /// Digests of the uncompressed layers, from the config.
    pub diff_ids: Vec<String>,
    /// Every blob the image references (index, manifest, config, layers).
    pub blobs: Vec<(String, u64, String)>,
}

/// Reads `path` into the content store and resolves its images. Every blob it put
/// into the store is pushed onto `ingested`, also when it fails, so the caller can
/// take out again what no image references.
pub fn read(
    path: &Path,
    store: &ContentStore,
    ingested: &mut Vec<String>,
) -> Result<Vec<ArchiveImage>> {
    read_into(path, store, ingested)
}

fn read_into(
    path: &Path,
    store: &ContentStore,
    ingested: &mut Vec<String>,
) -> Result<Vec<ArchiveImage>> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::InvalidArgument(format!("cannot open {}: {e}", path.display())))?;
    let mut reader = BufReader::new(file);
    let head = reader
        .fill_buf()
        .map_err(|e| Error::Corrupt(format!("reading {}: {e}", path.display())))?
        .to_vec();
    let stream: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    let mut tar = tar::Archive::new(stream);
    let not_archive = || {
        Error::InvalidArgument(format!(
            "{} is not an image archive (not a tar file)",
            path.display()
        ))
    };
    if !head.starts_with(&[0x1f, 0x8b]) && (head.len() < 262 || &head[257..262] != b"ustar") {
        return Err(not_archive());
    }
    let mut small: HashMap<String, Vec<u8>> = HashMap::new();
    let mut by_path: HashMap<String, (String, u64)> = HashMap::new();
    let entries = tar
        .entries()
        .map_err(|e| Error::Corrupt(format!("reading {}: {e}", path.display())))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| {
            Error::Corrupt(format!("{} is truncated or corrupt: {e}", path.display()))
        })?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = String::from_utf8_lossy(&entry.path_bytes())
            .trim_start_matches("./")
            .to_string();
        let expected = name
            .strip_prefix("blobs/sha256/")
            .map(|hex| format!("sha256:{hex}"));
        let size = entry.header().size().unwrap_or(0);
        if expected.is_some() || name.ends_with("layer.tar") || size > 4 << 20 {
            let (digest, n) =
                store
                    .ingest(&mut entry, expected.as_deref())
                    .map_err(|e| match e {
                        Error::Corrupt(m) if m.starts_with("reading") => Error::Corrupt(format!(
                            "{} is truncated or corrupt: {m}",
                            path.display()
                        )),
                        other => other,
                    })?;
            ingested.push(digest.clone());
            by_path.insert(name, (digest, n));
        } else {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(|e| {
                Error::Corrupt(format!("{} is truncated or corrupt: {e}", path.display()))
            })?;
            small.insert(name, bytes);
        }
    }
    if let Some(index) = small.get("index.json").cloned() {
        read_oci(&index, store)
    } else if let Some(manifest) = small.get("manifest.json").cloned() {
        read_docker(&manifest, &small, &by_path, store, ingested)
    } else {
        Err(Error::InvalidArgument(format!(
            "{} holds neither an OCI index.json nor a docker manifest.json",
            path.display()
        )))
    }
}

fn json(bytes: &[u8], what: &str) -> Result<Value> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::Corrupt(format!("{what} is not valid JSON: {e}")))
}

fn blob_json(store: &ContentStore, digest: &str, what: &str) -> Result<Value> {
    let bytes = store
        .read(digest)
        .map_err(|_| Error::Corrupt(format!("the archive lacks {what} {digest} (truncated?)")))?;
    json(&bytes, what)
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn read_oci(index: &[u8], store: &ContentStore) -> Result<Vec<ArchiveImage>> {
    let index = json(index, "index.json")?;
    let mut out = Vec::new();
    for desc in index["manifests"].as_array().cloned().unwrap_or_default() {
        let annotations = &desc["annotations"];
        let name = annotations["io.containerd.image.name"]
            .as_str()
            .or_else(|| annotations["org.opencontainers.image.ref.name"].as_str())
            .map(str::to_string);
        let mut blobs = Vec::new();
        let (digest, media) = pick_manifest(&desc, store, &mut blobs)?;
        out.push(image_of(name, &digest, &media, store, blobs)?);
    }
    if out.is_empty() {
        return Err(Error::Corrupt("index.json lists no images".into()));
    }
    Ok(out)
}

/// Follows indexes down to the manifest for this machine's platform (or the first).
fn pick_manifest(
    desc: &Value,
    store: &ContentStore,
    blobs: &mut Vec<(String, u64, String)>,
) -> Result<(String, String)> {
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
    let index = blob_json(store, &digest, "index")?;
    let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
    let chosen = manifests
        .iter()
        .find(|m| m["platform"]["architecture"] == host_arch() && m["platform"]["os"] == "linux")
        .or_else(|| manifests.first())
        .ok_or_else(|| Error::Corrupt(format!("index {digest} lists no manifests")))?;
    pick_manifest(chosen, store, blobs)
}

fn image_of(
    name: Option<String>,
    manifest_digest: &str,
    media: &str,
    store: &ContentStore,
    mut blobs: Vec<(String, u64, String)>,
) -> Result<ArchiveImage> {
    if media != OCI_MANIFEST && media != DOCKER_MANIFEST {
        return Err(Error::Corrupt(format!(
            "unsupported manifest type {media:?}"
        )));
    }
    let manifest = blob_json(store, manifest_digest, "manifest")?;
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .ok_or_else(|| Error::Corrupt(format!("manifest {manifest_digest} has no config")))?
        .to_string();
    let config = blob_json(store, &config_digest, "image config")?;
    blobs.push((
        config_digest.clone(),
        manifest["config"]["size"].as_u64().unwrap_or(0),
        OCI_CONFIG.into(),
    ));
    let mut layers = Vec::new();
    for l in manifest["layers"].as_array().cloned().unwrap_or_default() {
        let digest = l["digest"]
            .as_str()
            .ok_or_else(|| Error::Corrupt("a layer has no digest".into()))?
            .to_string();
        if !store.exists(&digest) {
            return Err(Error::Corrupt(format!(
                "the archive lacks layer {digest} (truncated?)"
            )));
        }
        let size = l["size"].as_u64().unwrap_or(0);
        blobs.push((
            digest.clone(),
            size,
            l["mediaType"].as_str().unwrap_or(OCI_LAYER).to_string(),
        ));
        layers.push(Layer { digest, size });
    }
    let diff_ids: Vec<String> = config["rootfs"]["diff_ids"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|d| d.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
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

/// `docker save`: a manifest.json list of {Config, RepoTags, Layers} by path. An OCI
/// manifest is made for each image and stored, so both forms end up alike.
fn read_docker(
    manifest: &[u8],
    small: &HashMap<String, Vec<u8>>,
    by_path: &HashMap<String, (String, u64)>,
    store: &ContentStore,
    ingested: &mut Vec<String>,
) -> Result<Vec<ArchiveImage>> {
    let list = json(manifest, "manifest.json")?;
    let mut out = Vec::new();
    for item in list.as_array().cloned().unwrap_or_default() {
        let config_path = item["Config"]
            .as_str()
            .ok_or_else(|| Error::Corrupt("manifest.json: an image has no Config".into()))?;
        let (config_digest, config_size) = match (small.get(config_path), by_path.get(config_path))
        {
            (Some(bytes), _) => {
                let (d, n) = store.ingest(&bytes[..], None)?;
                ingested.push(d.clone());
                (d, n)
            }
            (None, Some((d, n))) => (d.clone(), *n),
            _ => {
                return Err(Error::Corrupt(format!(
                    "the archive lacks {config_path} (truncated?)"
                )))
            }
        };
        let mut layers = Vec::new();
        for p in item["Layers"].as_array().cloned().unwrap_or_default() {
            let p = p.as_str().unwrap_or_default();
            let (digest, size) = by_path.get(p).cloned().ok_or_else(|| {
                Error::Corrupt(format!("the archive lacks layer {p} (truncated?)"))
            })?;
            let gz = {
                let mut head = [0u8; 2];
                let n = store.open_blob(&digest)?.read(&mut head).unwrap_or(0);
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
        store.ingest(&bytes[..], Some(&digest))?;
        ingested.push(digest.clone());
        let name = item["RepoTags"]
            .as_array()
            .and_then(|t| t.first())
            .and_then(|t| t.as_str())
            .map(normalize_name);
        let blobs = vec![(digest.clone(), bytes.len() as u64, OCI_MANIFEST.to_string())];
        out.push(image_of(name, &digest, OCI_MANIFEST, store, blobs)?);
    }
    if out.is_empty() {
        return Err(Error::Corrupt("manifest.json lists no images".into()));
    }
    Ok(out)
}

/// "busybox:latest" → "docker.io/library/busybox:latest", as docker names it.
pub fn normalize_name(name: &str) -> String {
    let first = name.split('/').next().unwrap_or("");
    let has_registry =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    match (has_registry, name.contains('/')) {
        (true, _) => name.to_string(),
        (false, true) => format!("docker.io/{name}"),
        (false, false) => format!("docker.io/library/{name}"),
    }
}

/// A layer's uncompressed stream (gzip detected by its magic bytes).
pub fn layer_reader(store: &ContentStore, digest: &str) -> Result<Box<dyn Read>> {
    let mut f = BufReader::new(store.open_blob(digest)?);
    let gz = f
        .fill_buf()
        .map(|b| b.starts_with(&[0x1f, 0x8b]))
        .unwrap_or(false);
    Ok(if gz {
        Box::new(flate2::read::GzDecoder::new(f))
    } else {
        Box::new(f)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_names_normalize() {
        assert_eq!(
            normalize_name("busybox:latest"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(normalize_name("me/app:1"), "docker.io/me/app:1");
        assert_eq!(
            normalize_name("registry.k8s.io/pause:3.9"),
            "registry.k8s.io/pause:3.9"
        );
    }
}
