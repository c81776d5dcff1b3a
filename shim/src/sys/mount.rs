//! Mounting the container's rootfs from the mounts in a Create request, and undoing it:
//! skiffd's mounts and the shim's share one implementation, `skiff-mount`.

pub use skiff_mount::{check_all, mount_all, unmount_all};
