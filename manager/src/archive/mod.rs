//! Reading image archives: an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/...`) or a `docker save` archive (`manifest.json`, a config and a
//! `layer.tar` per layer, or blobs in the newer layout), optionally gzipped as a whole.
//!
//! One pass over the archive: the few small documents that name its images are read
//! into memory (within the metadata size limit); blobs stream into the content store,
//! metered against the import limits, and the store refuses one that does not match its
//! name; every other entry is skipped unread.
//! An image may use only blobs that the archive carried or that its namespace already
//! has: a digest alone proves nothing. The result names, per image, its manifest,
//! config and layers.

mod docker;
mod oci;

use crate::error::{Error, Result};
use crate::limits::{Budget, ContentMeter};
use crate::storage::blobs::ContentStore;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The documents read into memory; everything else is a blob or skipped.
const DOCUMENTS: &[&str] = &["index.json", "manifest.json", "oci-layout", "repositories"];

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

/// What reading an archive works with.
pub struct Reader<'a> {
    pub store: &'a ContentStore,
    pub budget: &'a Budget,
    /// Whether the importing namespace already has a blob.
    pub known: &'a dyn Fn(&str) -> bool,
    /// Told how many more bytes of the archive file were read (progress).
    pub read: &'a (dyn Fn(u64) + Sync),
}

/// The archive's entries, as the formats need them.
#[derive(Default)]
struct Entries {
    documents: HashMap<String, Vec<u8>>,
    /// Blob entries by their path in the archive: (digest, size).
    by_path: HashMap<String, (String, u64)>,
    /// Every digest the archive carried.
    carried: HashSet<String>,
}

impl Reader<'_> {
    /// Reads `path` into the content store and resolves its images. Every blob it put
    /// into the store is pushed onto `ingested`, also when it fails, so the caller can
    /// take out again what no image references.
    pub fn read(&self, path: &Path, ingested: &mut Vec<String>) -> Result<Vec<ArchiveImage>> {
        let entries = self.entries(path, ingested)?;
        let view = View {
            reader: self,
            entries: &entries,
            made: Default::default(),
        };
        if let Some(index) = entries.documents.get("index.json") {
            view.oci(index)
        } else if let Some(manifest) = entries.documents.get("manifest.json") {
            view.docker(manifest, ingested)
        } else {
            Err(Error::InvalidArgument(format!(
                "{} holds neither an OCI index.json nor a docker manifest.json",
                path.display()
            )))
        }
    }

    fn entries(&self, path: &Path, ingested: &mut Vec<String>) -> Result<Entries> {
        let stream = open_archive(path, self.read)?;
        let mut tar = tar::Archive::new(stream);
        let broken = |e: std::io::Error| {
            Error::Corrupt(format!("{} is truncated or corrupt: {e}", path.display()))
        };
        let mut out = Entries::default();
        for entry in tar.entries().map_err(broken)? {
            let mut entry = entry.map_err(broken)?;
            self.budget.entry()?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let name = String::from_utf8_lossy(&entry.path_bytes())
                .trim_start_matches("./")
                .to_string();
            let size = entry.size();
            if DOCUMENTS.contains(&name.as_str()) {
                self.budget.metadata(&name, size)?;
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).map_err(broken)?;
                out.documents.insert(name, bytes);
                continue;
            }
            let expected = name
                .strip_prefix("blobs/sha256/")
                .map(|hex| format!("sha256:{hex}"));
            if expected.is_none() && !name.ends_with(".tar") && !name.ends_with(".json") {
                continue; // nothing any image can name
            }
            // Refused on its header's word before any of it is read, then metered as it
            // streams (a gzipped archive can carry gigabytes of zeros in megabytes).
            self.budget.content_fits(size)?;
            let data = Truncation {
                inner: &mut entry,
                path,
            };
            let mut metered = ContentMeter::new(data, self.budget);
            let (digest, n) = self
                .store
                .ingest(&mut metered, expected.as_deref())
                .map_err(|e| metered.explain(e))?;
            ingested.push(digest.clone());
            out.carried.insert(digest.clone());
            out.by_path.insert(name, (digest, n));
        }
        Ok(out)
    }
}

/// The archive's tar stream, gunzipped if it is gzipped as a whole.
fn open_archive<'a>(path: &Path, read: &'a (dyn Fn(u64) + Sync)) -> Result<Box<dyn Read + 'a>> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::InvalidArgument(format!("cannot open {}: {e}", path.display())))?;
    let mut reader = BufReader::new(Counted { inner: file, read });
    let head = reader
        .fill_buf()
        .map_err(|e| Error::Corrupt(format!("reading {}: {e}", path.display())))?
        .to_vec();
    let gzip = head.starts_with(&[0x1f, 0x8b]);
    if !gzip && (head.len() < 262 || &head[257..262] != b"ustar") {
        return Err(Error::InvalidArgument(format!(
            "{} is not an image archive (not a tar file)",
            path.display()
        )));
    }
    Ok(if gzip {
        Box::new(flate2::read::GzDecoder::new(reader))
    } else {
        Box::new(reader)
    })
}

/// The archive file, its bytes counted as they are read.
struct Counted<'a, R> {
    inner: R,
    read: &'a (dyn Fn(u64) + Sync),
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.read)(n as u64);
        Ok(n)
    }
}

/// Read errors of an entry say which archive broke.
struct Truncation<'a, R> {
    inner: R,
    path: &'a Path,
}

impl<R: Read> Read for Truncation<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("{} is truncated or corrupt: {e}", self.path.display()),
            )
        })
    }
}

/// The entries of one archive, as the format readers see them.
struct View<'a> {
    reader: &'a Reader<'a>,
    entries: &'a Entries,
    /// Blobs made while reading (the docker form's manifests).
    made: std::cell::RefCell<HashSet<String>>,
}

impl View<'_> {
    /// A blob the image may use: carried by the archive, or already the namespace's.
    fn usable(&self, digest: &str, what: &str) -> Result<()> {
        if self.entries.carried.contains(digest)
            || self.made.borrow().contains(digest)
            || (self.reader.known)(digest)
        {
            return Ok(());
        }
        Err(Error::Corrupt(format!(
            "the archive lacks {what} {digest} (truncated?)"
        )))
    }

    /// An index, manifest or config blob, as JSON (within the metadata size limit).
    fn blob_json(&self, digest: &str, what: &str) -> Result<Value> {
        self.usable(digest, what)?;
        let store = self.reader.store;
        self.reader
            .budget
            .metadata(&format!("{what} {digest}"), store.size(digest)?)?;
        json(&store.read(digest)?, what)
    }
}

/// The strings of a JSON array in an image document (an absent one is empty).
pub fn string_list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn json(bytes: &[u8], what: &str) -> Result<Value> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::Corrupt(format!("{what} is not valid JSON: {e}")))
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
