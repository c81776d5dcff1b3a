//! Import limits: how much one import may make skiffd read, hold and write, each with a
//! default, configurable on skiffd's command line, and named in the error that stops an
//! import at it. Counting happens while the archive and its layers stream through, so an
//! import stops at the limit, not after the damage: blobs written into the content store
//! and layers unpacked are metered as they stream, and a tar entry whose header alone
//! would go over is refused before a byte of it is read.

use crate::error::{Error, Result};
use std::sync::atomic::{AtomicU64, Ordering};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Below this many unpacked bytes the expansion ratio is not checked: a small archive
/// of a few headers can be a large multiple of nothing.
const RATIO_FLOOR: u64 = 64 * MIB;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Image indexes within indexes (a multi-platform image is one level).
    pub max_index_depth: u32,
    /// Size of one index, manifest or image config blob (read into memory whole).
    pub max_metadata_size: u64,
    /// Layers of one image (overlayfs stacks at most 500 lower directories).
    pub max_layers: u32,
    /// Uncompressed bytes of every layer of one import together; also the bytes one
    /// import may write into the content store.
    pub max_unpacked_size: u64,
    /// Tar entries of the archive and of its layers together.
    pub max_entries: u64,
    /// Uncompressed layer bytes (and content bytes) per byte of the archive. One gzip
    /// expands at most ~1032:1, so the default admits any singly compressed image and
    /// stops nested ones.
    pub max_expansion_ratio: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_index_depth: 16,
            max_metadata_size: 4 * MIB,
            max_layers: 500,
            max_unpacked_size: 32 * GIB,
            max_entries: 1_000_000,
            max_expansion_ratio: 1100,
        }
    }
}

/// The error for a limit: what went over, the limit's flag and value.
pub fn exceeded(flag: &str, value: impl std::fmt::Display, what: impl std::fmt::Display) -> Error {
    Error::LimitExceeded(format!(
        "{what}: over the import limit --{flag} {value} of skiffd"
    ))
}

/// What one import has used so far. Shared by the threads of a pull (atomics).
pub struct Budget {
    pub limits: Limits,
    /// Bytes the import came from (the archive, or the blobs a pull fetched): the
    /// expansion ratio's denominator.
    archive_size: AtomicU64,
    unpacked: AtomicU64,
    content: AtomicU64,
    entries: AtomicU64,
    /// Whether the client cancelled: every count checks it, so a cancelled import or
    /// pull stops at its next read or entry.
    cancelled: Option<Box<dyn Fn() -> bool + Send + Sync>>,
}

impl Budget {
    pub fn new(limits: Limits, archive_size: u64) -> Budget {
        Budget {
            limits,
            archive_size: AtomicU64::new(archive_size),
            unpacked: AtomicU64::new(0),
            content: AtomicU64::new(0),
            entries: AtomicU64::new(0),
            cancelled: None,
        }
    }

    /// The same budget, stopping once `cancelled` says so.
    pub fn with_cancel(mut self, cancelled: impl Fn() -> bool + Send + Sync + 'static) -> Budget {
        self.cancelled = Some(Box::new(cancelled));
        self
    }

    fn check_cancel(&self) -> Result<()> {
        match &self.cancelled {
            Some(c) if c() => Err(Error::Cancelled(
                "it was cancelled by its client, or its client went away".into(),
            )),
            _ => Ok(()),
        }
    }

    /// The bytes of source so far (an archive's size; what a pull fetched).
    pub fn source_size(&self) -> u64 {
        self.archive_size.load(Ordering::Relaxed)
    }

    /// `n` more bytes of source (a pull learns its size as it fetches).
    pub fn source(&self, n: u64) {
        self.archive_size.fetch_add(n, Ordering::Relaxed);
    }

    pub fn entry(&self) -> Result<()> {
        self.check_cancel()?;
        let n = self.entries.fetch_add(1, Ordering::Relaxed) + 1;
        if n > self.limits.max_entries {
            return Err(exceeded(
                "max-entries",
                self.limits.max_entries,
                "the archive and its layers hold more entries",
            ));
        }
        Ok(())
    }

    /// `n` more uncompressed layer bytes.
    pub fn unpacked(&self, n: u64) -> Result<()> {
        let total = self.unpacked.fetch_add(n, Ordering::Relaxed) + n;
        self.check(total, "the layers unpack to")
    }

    /// Whether a layer entry of `size` bytes (its tar header's word) still fits.
    pub fn unpacked_fits(&self, size: u64) -> Result<()> {
        let total = self.unpacked.load(Ordering::Relaxed).saturating_add(size);
        self.check_size(
            total,
            &format!("an entry of {size} bytes: the layers unpack to"),
        )
    }

    /// `n` more bytes written into the content store.
    pub fn content(&self, n: u64) -> Result<()> {
        let total = self.content.fetch_add(n, Ordering::Relaxed) + n;
        self.check(total, "the blobs take")
    }

    /// Whether a blob of `size` bytes (an archive entry's header, a registry's
    /// descriptor) still fits, before any of it is read.
    pub fn content_fits(&self, size: u64) -> Result<()> {
        let total = self.content.load(Ordering::Relaxed).saturating_add(size);
        self.check_size(total, &format!("a blob of {size} bytes: the blobs take"))
    }

    fn check(&self, total: u64, what: &str) -> Result<()> {
        self.check_cancel()?;
        self.check_size(total, what)?;
        let ratio = self.limits.max_expansion_ratio;
        let source = self.archive_size.load(Ordering::Relaxed);
        if total > RATIO_FLOOR && total / ratio.max(1) > source {
            return Err(exceeded(
                "max-expansion-ratio",
                ratio,
                format!("{what} more than {ratio} times the archive's {source} bytes"),
            ));
        }
        Ok(())
    }

    fn check_size(&self, total: u64, what: &str) -> Result<()> {
        if total > self.limits.max_unpacked_size {
            return Err(exceeded(
                "max-unpacked-size",
                self.limits.max_unpacked_size,
                format!("{what} more bytes"),
            ));
        }
        Ok(())
    }

    pub fn metadata(&self, what: &str, size: u64) -> Result<()> {
        if size > self.limits.max_metadata_size {
            return Err(exceeded(
                "max-metadata-size",
                self.limits.max_metadata_size,
                format!("{what} is {size} bytes"),
            ));
        }
        Ok(())
    }

    pub fn layers(&self, n: usize) -> Result<()> {
        if n as u64 > self.limits.max_layers as u64 {
            return Err(exceeded(
                "max-layers",
                self.limits.max_layers,
                format!("the image has {n} layers"),
            ));
        }
        Ok(())
    }

    pub fn index_depth(&self, depth: u32) -> Result<()> {
        if depth > self.limits.max_index_depth {
            return Err(exceeded(
                "max-index-depth",
                self.limits.max_index_depth,
                "image indexes nest deeper",
            ));
        }
        Ok(())
    }
}

/// A blob's bytes on their way into the content store, counted against the import's
/// budget as they pass; past a limit the read fails and the limit's error is kept in
/// `stopped` for the caller (a read error alone would say "corrupt").
pub struct ContentMeter<'a, R> {
    inner: R,
    budget: &'a Budget,
    pub stopped: Option<Error>,
}

impl<'a, R> ContentMeter<'a, R> {
    pub fn new(inner: R, budget: &'a Budget) -> Self {
        ContentMeter {
            inner,
            budget,
            stopped: None,
        }
    }

    /// The limit's error if one stopped the stream, else `e`.
    pub fn explain(&mut self, e: Error) -> Error {
        self.stopped.take().unwrap_or(e)
    }
}

impl<R: std::io::Read> std::io::Read for ContentMeter<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Err(limit) = self.budget.content(n as u64) {
            self.stopped = Some(limit);
            return Err(std::io::Error::other("an import limit was reached"));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn each_limit_stops_with_its_flag_named() {
        let limits = Limits {
            max_entries: 2,
            max_unpacked_size: 100 * MIB,
            max_expansion_ratio: 10,
            ..Limits::default()
        };
        let b = Budget::new(limits.clone(), 5 * MIB);
        b.entry().unwrap();
        b.entry().unwrap();
        assert!(b
            .entry()
            .unwrap_err()
            .to_string()
            .contains("--max-entries 2"));
        b.unpacked(50 * MIB).unwrap();
        let e = b.unpacked(20 * MIB).unwrap_err().to_string();
        assert!(e.contains("--max-expansion-ratio 10"), "{e}");
        let b = Budget::new(limits.clone(), 100 * GIB);
        assert!(b
            .unpacked(101 * MIB)
            .unwrap_err()
            .to_string()
            .contains("--max-unpacked-size"));
        assert!(b
            .metadata("index x", 5 * MIB)
            .unwrap_err()
            .to_string()
            .contains("--max-metadata-size"));
        assert!(b.layers(501).is_err() && b.layers(500).is_ok());
        let b = Budget::new(limits.clone(), 100 * GIB);
        b.content_fits(100 * MIB).unwrap();
        let e = b.content_fits(101 * MIB).unwrap_err().to_string();
        assert!(e.contains("a blob of 105906176 bytes"), "{e}");
        let mut meter = ContentMeter::new(std::io::repeat(0).take(200 * MIB), &b);
        let copied = std::io::copy(&mut meter, &mut std::io::sink());
        assert!(copied.is_err());
        let e = meter
            .explain(crate::error::io("x", std::io::Error::other("x")))
            .to_string();
        assert!(
            e.contains("the blobs take more bytes: over the import limit --max-unpacked-size"),
            "{e}"
        );
        assert!(b
            .index_depth(17)
            .unwrap_err()
            .to_string()
            .contains("--max-index-depth 16"));
    }
}
