//! Blobs on disk by sha256 digest. A blob is written to `ingest/`, checked against the
//! digest it claims, and only then renamed into `blobs/sha256/` (a blob already there
//! is kept, not replaced): a blob in the store is always whole and correct. Its row in
//! `content` is added only after [`ContentStore::sync`] (one `syncfs` for a whole
//! import, not one fsync per blob), so a crash leaves at most a file without a row,
//! which recovery removes.

use crate::error::{io, Error, Result};
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub struct ContentStore {
    blobs: PathBuf,
    ingest: PathBuf,
}

static INGEST_SEQ: AtomicU64 = AtomicU64::new(0);

/// "sha256:<64 lowercase hex>" or an error naming what was given.
pub fn parse_digest(digest: &str) -> Result<&str> {
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|h| {
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
        .ok_or_else(|| Error::InvalidArgument(format!("{digest:?} is not a sha256 digest")))?;
    Ok(hex)
}

pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

impl ContentStore {
    pub fn open(root: &Path) -> Result<ContentStore> {
        let blobs = root.join("blobs/sha256");
        let ingest = root.join("ingest");
        for d in [&blobs, &ingest] {
            fs::create_dir_all(d).map_err(|e| io(format!("creating {}", d.display()), e))?;
        }
        Ok(ContentStore { blobs, ingest })
    }

    pub fn path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self.blobs.join(parse_digest(digest)?))
    }

    pub fn exists(&self, digest: &str) -> bool {
        self.path(digest).map(|p| p.is_file()).unwrap_or(false)
    }

    pub fn open_blob(&self, digest: &str) -> Result<File> {
        let path = self.path(digest)?;
        File::open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                Error::NotFound(format!("blob {digest} is not in the content store"))
            }
            _ => io(format!("opening blob {digest}"), e),
        })
    }

    pub fn read(&self, digest: &str) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.open_blob(digest)?
            .read_to_end(&mut out)
            .map_err(|e| io(format!("reading blob {digest}"), e))?;
        Ok(out)
    }

    /// The blob's size on disk.
    pub fn size(&self, digest: &str) -> Result<u64> {
        let f = self.open_blob(digest)?;
        f.metadata()
            .map(|m| m.len())
            .map_err(|e| io(format!("reading blob {digest}"), e))
    }

    /// Everything written into the store so far, to disk: before rows name it.
    pub fn sync(&self) -> Result<()> {
        let dir = File::open(&self.blobs).map_err(|e| io("opening the content store", e))?;
        nix::unistd::syncfs(&dir).map_err(|e| crate::error::sys("syncing the content store", e))
    }

    /// Writes `data` into the store. With `expected`, a blob whose bytes hash to
    /// anything else is refused and nothing is kept. Returns (digest, size).
    pub fn ingest(&self, mut data: impl Read, expected: Option<&str>) -> Result<(String, u64)> {
        if let Some(e) = expected {
            parse_digest(e)?;
        }
        let mut w = self.writer()?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let got = data.read(&mut buf).map_err(|e| {
                Error::Corrupt(format!("reading {}: {e}", expected.unwrap_or("a blob")))
            })?;
            if got == 0 {
                break;
            }
            w.write(&buf[..got])?;
        }
        w.commit(expected)
    }

    /// A blob written piece by piece (a download that may resume where it broke off):
    /// hashed as it is written, visible only once committed, removed if dropped first.
    pub fn writer(&self) -> Result<Ingest<'_>> {
        let n = INGEST_SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp = self.ingest.join(format!("{}-{n}", std::process::id()));
        let file = File::create(&tmp).map_err(|e| io("creating an ingest file", e))?;
        Ok(Ingest {
            store: self,
            tmp,
            file: Some(file),
            hasher: Sha256::new(),
            size: 0,
        })
    }

    pub fn remove(&self, digest: &str) -> Result<()> {
        match fs::remove_file(self.path(digest)?) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(format!("removing blob {digest}"), e)),
        }
    }

    /// Digests of every blob file, for recovery.
    pub fn list_files(&self) -> Vec<String> {
        fs::read_dir(&self.blobs)
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .map(|hex| format!("sha256:{hex}"))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Removes half-written ingest files (of a crashed import).
    pub fn clear_ingest(&self) -> usize {
        let mut n = 0;
        if let Ok(d) = fs::read_dir(&self.ingest) {
            for e in d.flatten() {
                if fs::remove_file(e.path()).is_ok() {
                    n += 1;
                }
            }
        }
        n
    }
}

/// A blob being written (`ContentStore::writer`).
pub struct Ingest<'a> {
    store: &'a ContentStore,
    tmp: PathBuf,
    file: Option<File>,
    hasher: Sha256,
    size: u64,
}

impl Ingest<'_> {
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        if let Some(f) = self.file.as_mut() {
            f.write_all(data)
                .map_err(|e| io("writing an ingest file", e))?;
        }
        self.hasher.update(data);
        self.size += data.len() as u64;
        Ok(())
    }

    /// Bytes written so far (where a resumed download starts).
    pub fn len(&self) -> u64 {
        self.size
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Checks the bytes against `expected` and moves the blob into place; a blob that
    /// hashes to anything else is removed. Returns (digest, size).
    pub fn commit(mut self, expected: Option<&str>) -> Result<(String, u64)> {
        let digest = format!("sha256:{:x}", std::mem::take(&mut self.hasher).finalize());
        drop(self.file.take());
        if let Some(e) = expected {
            if e != digest {
                return Err(Error::Corrupt(format!(
                    "blob {e} does not match its digest: its content hashes to {digest}"
                )));
            }
        }
        let dest = self.store.path(&digest)?;
        if dest.exists() {
            // The same bytes are there, and already synced: keep those.
            let _ = fs::remove_file(&self.tmp);
        } else {
            fs::rename(&self.tmp, &dest).map_err(|e| io("committing a blob", e))?;
        }
        self.tmp = PathBuf::new();
        Ok((digest, self.size))
    }
}

impl Drop for Ingest<'_> {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_is_kept_only_when_it_matches_its_digest() {
        let dir = std::env::temp_dir().join(format!("skiff-content-{}", std::process::id()));
        let store = ContentStore::open(&dir).unwrap();
        let good = digest_of(b"hello");
        let (d, n) = store.ingest(&b"hello"[..], Some(&good)).unwrap();
        assert_eq!((d.as_str(), n), (good.as_str(), 5));
        assert_eq!(store.read(&good).unwrap(), b"hello");
        let wrong = digest_of(b"other");
        let err = store.ingest(&b"hello!"[..], Some(&wrong)).unwrap_err();
        assert!(
            err.to_string().contains("does not match its digest"),
            "{err}"
        );
        assert!(!store.exists(&wrong));
        assert_eq!(store.list_files(), vec![good.clone()]);
        assert_eq!(fs::read_dir(dir.join("ingest")).unwrap().count(), 0);
        assert!(parse_digest("sha256:../../etc").is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
