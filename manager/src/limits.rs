//! Import limits: how much one import may make skiffd read, hold and write, each with a
//! default, configurable on skiffd's command line, and named in the error that stops an
//! import at it. Counting happens while the archive and its layers stream through, so an
//! import stops at the limit, not after the damage.

use crate::error::{Error, Result};
use std::cell::Cell;

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
    /// Uncompressed bytes of every layer of one import together.
    pub max_unpacked_size: u64,
    /// Tar entries of the archive and of its layers together.
    pub max_entries: u64,
    /// Uncompressed layer bytes per byte of the archive. One gzip expands at most
    /// ~1032:1, so the default admits any singly compressed image and stops nested ones.
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

/// What one import has used so far.
pub struct Budget {
    pub limits: Limits,
    archive_size: u64,
    unpacked: Cell<u64>,
    entries: Cell<u64>,
}

impl Budget {
    pub fn new(limits: Limits, archive_size: u64) -> Budget {
        Budget {
            limits,
            archive_size,
            unpacked: Cell::new(0),
            entries: Cell::new(0),
        }
    }

    pub fn entry(&self) -> Result<()> {
        let n = self.entries.get() + 1;
        self.entries.set(n);
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
        let total = self.unpacked.get() + n;
        self.unpacked.set(total);
        if total > self.limits.max_unpacked_size {
            return Err(exceeded(
                "max-unpacked-size",
                self.limits.max_unpacked_size,
                "the layers unpack to more bytes",
            ));
        }
        let ratio = self.limits.max_expansion_ratio;
        if total > RATIO_FLOOR && total / ratio.max(1) > self.archive_size {
            return Err(exceeded(
                "max-expansion-ratio",
                ratio,
                format!(
                    "the layers unpack to more than {ratio} times the archive's {} bytes",
                    self.archive_size
                ),
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let b = Budget::new(limits, 100 * GIB);
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
        assert!(b
            .index_depth(17)
            .unwrap_err()
            .to_string()
            .contains("--max-index-depth 16"));
    }
}
