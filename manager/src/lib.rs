//! skiff's manager: `skiffd` keeps container metadata in SQLite, image content by
//! digest, and unpacked images as snapshots (overlayfs, or copies where overlayfs is
//! not available), and serves them over ttrpc as skiff.v1; `skiff` is its CLI.
//!
//! One module per concern: `db` (schema and migrations), `content` (blobs),
//! `snapshots` (trees and their mounts), `unpack` (applying a layer), `import`
//! (reading archives), `spec` (a container's OCI spec), `store` (the rules tying them
//! together: references, collection, recovery), `service` (the API), `daemon`.

pub mod attach;
pub mod cli;
pub mod cli_task;
pub mod content;
pub mod daemon;
pub mod db;
pub mod error;
pub mod events;
pub mod import;
pub mod log;
pub mod mount;
pub mod service;
pub mod shim;
pub mod snapshots;
pub mod spec;
pub mod store;
pub mod tasks;
pub mod unpack;
