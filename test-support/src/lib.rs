//! What the tests of several crates share without the integration crate's daemons and
//! clients: OCI bundles from the machine's busybox, temporary directories, and cleaning
//! up the cgroups a test made.

pub mod bundle;
pub mod cgroup;
pub mod mount;
