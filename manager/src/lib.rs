//! skiff's manager: `skiffd` keeps container metadata in SQLite, image content by
//! digest, and unpacked images as snapshots (overlayfs, or copies where overlayfs is
//! not available), and serves them over ttrpc as skiff.v1; `skiff` is its CLI.
//!
//! One module per concern: `storage` (what is kept on disk: `storage/db` the schema and
//! migrations, `storage/blobs` content by digest, `storage/trees` snapshot directories
//! and their mounts), `store` (the rules tying them together: references, imports and
//! pulls, collection, recovery), `unpack` (applying a layer), `archive`
//! (reading archives), `registry` (pulling from registries), `limits` (what one import or
//! pull may use), `progress` (long requests' progress and cancelling), `metrics`
//! (Prometheus text), `secure_dir` (directories only root can change), `spec` (a
//! container's OCI spec), `service` (the API), `daemon`.

pub mod archive;
pub mod attach;
pub mod cli;

pub mod crash;
pub mod daemon;
pub mod error;
pub mod event_log;
pub mod events;
pub mod limits;
pub mod log;
pub mod metrics;
pub mod progress;
pub mod registry;
pub mod secure_dir;
pub mod service;
pub mod shim;
pub mod spec;
pub mod storage;
pub mod store;
pub mod tasks;
pub mod units;
pub mod unpack;
