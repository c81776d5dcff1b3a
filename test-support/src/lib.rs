//! What the tests of several crates share without the integration crate's daemons and
//! clients: OCI bundles from the machine's busybox, temporary directories, cleaning up
//! the cgroups a test made, hostile layers written entry by entry (`layer_tar`) and what
//! a directory tree holds (`tree_state`), for skiffd's unpack tests and fuzz target.

pub mod bundle;
pub mod cgroup;
pub mod layer_tar;
pub mod mount;
pub mod tree_state;
