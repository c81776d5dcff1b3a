//! Fetching an image from a registry into the content store: the manifest by tag or
//! digest (an index resolved to this machine's platform), then its config and layers
//! concurrently (`blobs`). Every byte is checked against its digest before the blob is visible
//! (`content::Ingest`); a blob the namespace already has is not fetched again; a blob
//! whose connection breaks is resumed with a `Range` request; and everything counts
//! against the import limits as it streams: manifests and configs against
//! `--max-metadata-size` before they are read, layers against `--max-layers`, blob
//! bytes against `--max-unpacked-size`.

use super::client::{registry_error, Response, Session};
use crate::archive::{ArchiveImage, Layer};
use crate::error::{Error, Result};
use crate::limits::Budget;
use crate::progress::Job;
use crate::storage::blobs::{digest_of, ContentStore};
use oci_spec::image::{Arch, Descriptor, ImageConfiguration, ImageIndex, ImageManifest, Os};
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const LAYER_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
];

pub struct Fetch<'a> {
    pub session: &'a Session,
    pub store: &'a ContentStore,
    pub budget: &'a Budget,
    /// Whether the namespace already has a blob (then it is not fetched again).
    pub known: &'a (dyn Fn(&str) -> bool + Sync),
    pub job: &'a Job,
    /// Blobs put into the store, for the caller to take out again if no row names them.
    pub ingested: Mutex<Vec<String>>,
    /// Bytes received from the registry.
    pub received: AtomicU64,
}

/// A manifest or index as fetched.
struct Document {
    bytes: Vec<u8>,
    digest: String,
    media_type: String,
}

impl Fetch<'_> {
    pub fn image(&self) -> Result<ArchiveImage> {
        let reference = &self.session.reference;
        let mut blobs = Vec::new();
        let mut doc = self.manifest(reference.object(), reference.digest.is_none())?;
        let mut depth = 0;
        while doc.media_type == OCI_INDEX || doc.media_type == DOCKER_LIST {
            depth += 1;
            self.budget.index_depth(depth)?;
            blobs.push((
                doc.digest.clone(),
                doc.bytes.len() as u64,
                doc.media_type.clone(),
            ));
            let index: ImageIndex = serde_json::from_slice(&doc.bytes)
                .map_err(|e| Error::Corrupt(format!("index {}: {e}", doc.digest)))?;
            let pick = pick_platform(&index).ok_or_else(|| {
                Error::NotFound(format!(
                    "{reference} has no image for linux/{}",
                    std::env::consts::ARCH
                ))
            })?;
            doc = self.manifest(pick.digest().as_ref(), false)?;
        }
        if doc.media_type != OCI_MANIFEST && doc.media_type != DOCKER_MANIFEST {
            return Err(Error::InvalidArgument(format!(
                "{reference} is a {:?}, not an image skiffd can run",
                doc.media_type
            )));
        }
        blobs.push((
            doc.digest.clone(),
            doc.bytes.len() as u64,
            doc.media_type.clone(),
        ));
        let manifest: ImageManifest = serde_json::from_slice(&doc.bytes)
            .map_err(|e| Error::Corrupt(format!("manifest {}: {e}", doc.digest)))?;
        self.budget.layers(manifest.layers().len())?;
        let config = manifest.config();
        self.budget
            .metadata(&format!("image config {}", config.digest()), config.size())?;
        for l in manifest.layers() {
            let media = l.media_type().to_string();
            if !LAYER_TYPES.contains(&media.as_str()) {
                return Err(Error::InvalidArgument(format!(
                    "layer {} is {media:?}: skiffd unpacks tar and tar+gzip layers",
                    l.digest()
                )));
            }
        }
        let mut wanted = vec![config.clone()];
        wanted.extend(manifest.layers().iter().cloned());
        self.blobs(&wanted)?;
        let config_bytes = self.store.read(config.digest().as_ref())?;
        let parsed: ImageConfiguration = serde_json::from_slice(&config_bytes)
            .map_err(|e| Error::Corrupt(format!("image config {}: {e}", config.digest())))?;
        let diff_ids = parsed.rootfs().diff_ids().clone();
        if diff_ids.len() != manifest.layers().len() {
            return Err(Error::Corrupt(format!(
                "the config lists {} layer diff ids for {} layers",
                diff_ids.len(),
                manifest.layers().len()
            )));
        }
        for d in &wanted {
            blobs.push((d.digest().to_string(), d.size(), d.media_type().to_string()));
        }
        Ok(ArchiveImage {
            name: Some(reference.to_string()),
            manifest_digest: doc.digest,
            manifest_media_type: doc.media_type,
            config_digest: config.digest().to_string(),
            layers: manifest
                .layers()
                .iter()
                .map(|l| Layer {
                    digest: l.digest().to_string(),
                    size: l.size(),
                })
                .collect(),
            diff_ids,
            blobs,
        })
    }

    pub(super) fn cancelled(&self) -> Result<()> {
        if self.job.cancelled() {
            return Err(Error::Cancelled(
                "the pull was cancelled by its client, or its client went away".into(),
            ));
        }
        Ok(())
    }

    /// Endpoints that may serve a request (`resolve`: a tag; else by digest), in order.
    fn endpoints(&self, resolve: bool) -> Vec<usize> {
        (0..self.session.endpoints.len())
            .filter(|i| {
                let e = &self.session.endpoints[*i];
                if resolve {
                    e.resolve
                } else {
                    e.pull
                }
            })
            .collect()
    }

    /// GET of `path` from the first endpoint that has it (404 moves to the next).
    pub(super) fn get(
        &self,
        path: &str,
        resolve: bool,
        headers: &[(&str, String)],
    ) -> Result<(usize, Response)> {
        let mut last = None;
        for i in self.endpoints(resolve) {
            match self.session.get(i, path, headers) {
                Ok(r) if r.status() == 404 => last = Some(Ok((i, r))),
                Ok(r) => return Ok((i, r)),
                Err(e) => last = Some(Err(e)),
            }
        }
        last.unwrap_or_else(|| {
            Err(Error::InvalidArgument(
                "no registry endpoint may serve this".into(),
            ))
        })
    }

    fn manifest(&self, object: &str, by_tag: bool) -> Result<Document> {
        self.cancelled()?;
        let reference = &self.session.reference;
        let accept = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST].join(", ");
        let (i, mut resp) = self.get(
            &format!("/manifests/{object}"),
            by_tag,
            &[("Accept", accept)],
        )?;
        let host = self.session.endpoints[i].host().to_string();
        let status = resp.status().as_u16();
        if status != 200 {
            let body = resp
                .body_mut()
                .with_config()
                .limit(64 << 10)
                .read_to_vec()
                .unwrap_or_default();
            let detail = registry_error(&body);
            return Err(if status == 404 {
                Error::NotFound(format!(
                    "{host} has no manifest {object} for {} ({})",
                    reference.repository,
                    if detail.is_empty() {
                        "404".into()
                    } else {
                        detail
                    }
                ))
            } else {
                Error::Unavailable(format!(
                    "{host} answered {status} for manifest {object}: {detail}"
                ))
            });
        }
        let limit = self.budget.limits.max_metadata_size;
        if let Some(n) = resp.body().content_length() {
            self.budget
                .metadata(&format!("manifest {object} of {host}"), n)?;
        }
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(';').next().unwrap_or("").trim().to_string())
        };
        let content_type = header("content-type");
        let claimed = header("docker-content-digest");
        let mut bytes = Vec::new();
        resp.body_mut()
            .as_reader()
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| {
                Error::Unavailable(format!("{host} went away sending manifest {object}: {e}"))
            })?;
        self.budget
            .metadata(&format!("manifest {object} of {host}"), bytes.len() as u64)?;
        self.received
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let digest = digest_of(&bytes);
        let expected = if by_tag {
            claimed.filter(|c| c.starts_with("sha256:"))
        } else {
            Some(object.to_string())
        };
        if let Some(e) = expected {
            if e != digest {
                return Err(Error::Corrupt(format!(
                    "{host} sent a manifest for {e} whose content hashes to {digest}"
                )));
            }
        }
        let v: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Corrupt(format!("manifest {object} of {host} is not JSON: {e}")))?;
        let media_type = v["mediaType"]
            .as_str()
            .map(str::to_string)
            .or(content_type)
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| {
                if v.get("manifests").is_some() {
                    OCI_INDEX.into()
                } else {
                    OCI_MANIFEST.into()
                }
            });
        self.store.ingest(&bytes[..], Some(&digest))?;
        self.ingested.lock().unwrap().push(digest.clone());
        Ok(Document {
            bytes,
            digest,
            media_type,
        })
    }
}

fn host_arch() -> Arch {
    match std::env::consts::ARCH {
        "x86_64" => Arch::Amd64,
        "aarch64" => Arch::ARM64,
        "arm" => Arch::ARM,
        "s390x" => Arch::s390x,
        "powerpc64" => Arch::PowerPC64,
        other => Arch::Other(other.to_string()),
    }
}

/// This machine's manifest in an index: linux and its architecture.
fn pick_platform(index: &ImageIndex) -> Option<&Descriptor> {
    let arch = host_arch();
    index.manifests().iter().find(|m| {
        m.platform()
            .as_ref()
            .is_some_and(|p| *p.os() == Os::Linux && *p.architecture() == arch)
    })
}
