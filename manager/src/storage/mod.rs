//! What skiffd keeps on disk, each kind in one place: the metadata database and its
//! migrations (`db`), image content by digest (`blobs`), and snapshot directories with
//! their mounts (`trees`). The rules that tie them together (what references what, what
//! is collected) are `crate::store`'s, above it and above the archive and registry
//! readers that write blobs here.

pub mod blobs;
pub mod db;
pub mod trees;
