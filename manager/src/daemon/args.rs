//! skiffd's command line (clap): where it keeps things, and the import limits.

use crate::limits::Limits;
use clap::Parser;
use std::path::PathBuf;

pub const DEFAULT_ROOT: &str = "/var/lib/skiff";
pub const DEFAULT_STATE: &str = "/run/skiff";
pub const DEFAULT_ADDRESS: &str = "/run/skiff/skiffd.sock";

#[derive(Parser, Debug, Clone)]
#[command(
    name = "skiffd",
    version,
    about = "A minimal container manager: metadata in SQLite, image content, overlayfs snapshots, containers run through shim-v2 binaries; serves skiff.v1 until SIGTERM or SIGINT"
)]
pub struct Args {
    /// Metadata, content and snapshots.
    #[arg(long, default_value = DEFAULT_ROOT)]
    pub root: PathBuf,
    /// Runtime state: bundles, the events socket.
    #[arg(long, default_value = DEFAULT_STATE)]
    pub state: PathBuf,
    /// The API socket.
    #[arg(long, default_value = DEFAULT_ADDRESS)]
    pub address: PathBuf,
    #[arg(long, default_value = "info", value_parser = ["error", "warn", "info", "debug"])]
    pub log_level: String,
    /// Copy trees instead of using overlayfs.
    #[arg(long)]
    pub native_snapshots: bool,
    /// Containers' cgroups go under PARENT/NAMESPACE/ID.
    #[arg(long, default_value = "/skiff", value_parser = cgroup_parent)]
    pub cgroup_parent: String,
    /// A detached container's log (under --root) is rotated when it would pass this
    /// size; one rotated file is kept, so at most twice this per container.
    #[arg(long, value_name = "SIZE", default_value = "10m", value_parser = log_size)]
    pub max_log_size: u64,
    /// Registries' configuration: a directory per registry host in containerd's
    /// hosts.toml form (mirrors, CA files, skip_verify, server).
    #[arg(long, value_name = "DIR", default_value = crate::registry::hosts::DEFAULT_CONFIG_DIR)]
    pub registry_config: PathBuf,
    /// Serve Prometheus metrics at http://HOST:PORT/v1/metrics (port 0 picks one).
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_address: Option<String>,
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// What one image import may use; an import over one fails with the flag named.
#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "Import limits")]
pub struct LimitArgs {
    /// Image indexes within indexes.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_index_depth)]
    pub max_index_depth: u32,
    /// Size of one index, manifest or image config (e.g. 4m).
    #[arg(long, value_name = "SIZE", default_value = "4m", value_parser = size)]
    pub max_metadata_size: u64,
    /// Layers of one image.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_layers)]
    pub max_layers: u32,
    /// Uncompressed bytes of all layers of one import (e.g. 32g).
    #[arg(long, value_name = "SIZE", default_value = "32g", value_parser = size)]
    pub max_unpacked_size: u64,
    /// Tar entries of the archive and its layers together.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_entries)]
    pub max_entries: u64,
    /// Uncompressed layer bytes per byte of the archive.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_expansion_ratio)]
    pub max_expansion_ratio: u64,
}

impl LimitArgs {
    pub fn limits(&self) -> Limits {
        Limits {
            max_index_depth: self.max_index_depth,
            max_metadata_size: self.max_metadata_size,
            max_layers: self.max_layers,
            max_unpacked_size: self.max_unpacked_size,
            max_entries: self.max_entries,
            max_expansion_ratio: self.max_expansion_ratio,
        }
    }
}

fn size(s: &str) -> Result<u64, String> {
    crate::units::parse_size(s)
}

/// At least 64 KiB: one read of the output (a smaller cap would keep only its tail).
fn log_size(s: &str) -> Result<u64, String> {
    let n = size(s)?;
    if n < 64 << 10 {
        return Err(format!(
            "{s} is under 64k, one read of a container's output"
        ));
    }
    Ok(n)
}

fn cgroup_parent(v: &str) -> Result<String, String> {
    if !v.starts_with('/') || v.split('/').any(|p| p == "..") {
        return Err(format!(
            "{v:?} must be an absolute cgroup path without '..'"
        ));
    }
    Ok(v.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_limits_defaults() {
        let a = Args::try_parse_from(["skiffd"]).unwrap();
        assert_eq!(a.limits.limits(), Limits::default());
        assert_eq!(a.cgroup_parent, "/skiff");
        assert!(Args::try_parse_from(["skiffd", "--cgroup-parent", "x/../y"]).is_err());
        let a = Args::try_parse_from(["skiffd", "--max-metadata-size", "1m"]).unwrap();
        assert_eq!(a.limits.max_metadata_size, 1 << 20);
    }
}
