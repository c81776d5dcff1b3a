//! The wire APIs skiff speaks, generated at build time from `proto/`.
//!
//! Message and service names are containerd's own, so the modules below mirror its
//! packages: `shim` (containerd.task.v2), `task_events` (containerd.events), `mount`,
//! `task` and `envelope` (containerd types), `events` (the ttrpc events service) and
//! `options` (containerd.runc.v1), `metrics_v1` and `metrics_v2` (containerd's cgroup
//! metrics).
#![allow(clippy::all, unused_qualifications, missing_docs)]

#[allow(
    dead_code,
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    unused_imports,
    unused_results,
    unused_mut,
    unknown_lints,
    clippy::all
)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/modules.rs"));
}

pub use generated::*;
pub use protobuf;
pub use ttrpc;

/// Type URLs containerd uses in `Any` values. containerd's typeurl registry names
/// gogo-registered messages by their bare full name, with no `type.googleapis.com/` prefix.
pub mod type_url {
    pub const TASK_CREATE: &str = "containerd.events.TaskCreate";
    pub const TASK_START: &str = "containerd.events.TaskStart";
    pub const TASK_EXIT: &str = "containerd.events.TaskExit";
    pub const TASK_DELETE: &str = "containerd.events.TaskDelete";
    pub const TASK_OOM: &str = "containerd.events.TaskOOM";
    pub const TASK_EXEC_ADDED: &str = "containerd.events.TaskExecAdded";
    pub const TASK_EXEC_STARTED: &str = "containerd.events.TaskExecStarted";
    pub const TASK_PAUSED: &str = "containerd.events.TaskPaused";
    pub const TASK_RESUMED: &str = "containerd.events.TaskResumed";
    pub const TASK_CHECKPOINTED: &str = "containerd.events.TaskCheckpointed";
    pub const RUNC_OPTIONS: &str = "containerd.runc.v1.Options";
    pub const PROCESS_DETAILS: &str = "containerd.runc.v1.ProcessDetails";
    pub const CGROUPS_V1_METRICS: &str = "io.containerd.cgroups.v1.Metrics";
    pub const CGROUPS_V2_METRICS: &str = "io.containerd.cgroups.v2.Metrics";
}
