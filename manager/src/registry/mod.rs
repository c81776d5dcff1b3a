//! Pulling images from registries (the distribution API): `reference` (names, as
//! containerd normalises them), `hosts` (where a registry answers: mirrors, TLS, plain
//! HTTP), `auth` (challenges and docker's credentials), `client` (a session with one
//! repository), `fetch` (manifests and blobs into the content store, within the import
//! limits). The store turns what was fetched into an image (`store/pull.rs`).

pub mod auth;
pub mod client;
pub mod fetch;
pub mod hosts;
pub mod reference;

pub use client::{Options, Session};
pub use reference::Reference;
