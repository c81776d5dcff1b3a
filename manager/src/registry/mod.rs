//! Pulling images from registries (the distribution API): `reference` (names, as
//! containerd normalises them), `hosts` (where a registry answers: mirrors, TLS, plain
//! HTTP), `auth` (challenges and docker's credentials), `client` (a session with one
//! repository), `fetch` (manifests into the content store, within the import limits)
//! and `blob` (config and layers). The store turns what was fetched into an image (`store/pull.rs`).

pub mod auth;
mod blob;
pub mod client;
pub mod fetch;
pub mod hosts;
pub mod reference;

pub use client::{Options, Session};
pub use reference::Reference;
