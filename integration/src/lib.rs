//! Helpers for skiff's end-to-end tests: a busybox rootfs and OCI bundle built from the
//! machine's busybox-static (no network), a private containerd per test, and `ctr`.

pub mod bundle;
pub mod containerd;
pub mod proc;
