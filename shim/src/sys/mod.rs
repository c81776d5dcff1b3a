//! System helpers beneath the task model: the subreaper, the epoll poller and its tokens, rootfs mounts,
//! cgroup joining and OOM watches, the shim's own log and allocator settings.

pub mod attach_warmup;
pub mod kmsg;
pub mod logging;
pub mod memory;
pub mod mount;
pub mod oom;
pub mod pod_ns;
pub mod poller;
pub mod procfs;
pub mod reaper;
pub mod shim_cgroup;
pub mod signal;
pub mod token;
