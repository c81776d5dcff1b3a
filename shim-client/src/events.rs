//! Reading a task event out of its `Any`, whatever the shim named its type
//! (`containerd.events.TaskExit`, with or without a `types.containerd.io/` prefix).

use protobuf::Message;
use skiff_protos::task_events::*;

/// What a user reads from a task event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskEvent {
    pub container_id: String,
    /// The exec id of exec events and of an exec's TaskExit/TaskDelete.
    pub exec_id: String,
    pub pid: u32,
    pub exit_status: u32,
}

pub fn decode(type_url: &str, value: &[u8]) -> Option<TaskEvent> {
    let name = type_url.rsplit(['.', '/']).next().unwrap_or("");
    let e = |container_id: String, exec_id: String, pid: u32, exit_status: u32| TaskEvent {
        container_id,
        exec_id,
        pid,
        exit_status,
    };
    Some(match name {
        "TaskCreate" => TaskCreate::parse_from_bytes(value)
            .map(|m| e(m.container_id, String::new(), m.pid, 0))
            .ok()?,
        "TaskStart" => TaskStart::parse_from_bytes(value)
            .map(|m| e(m.container_id, String::new(), m.pid, 0))
            .ok()?,
        "TaskExit" => TaskExit::parse_from_bytes(value)
            .map(|m| e(m.container_id, m.id, m.pid, m.exit_status))
            .ok()?,
        "TaskDelete" => TaskDelete::parse_from_bytes(value)
            .map(|m| e(m.container_id, m.id, m.pid, m.exit_status))
            .ok()?,
        "TaskOOM" => TaskOOM::parse_from_bytes(value)
            .map(|m| e(m.container_id, String::new(), 0, 0))
            .ok()?,
        "TaskExecAdded" => TaskExecAdded::parse_from_bytes(value)
            .map(|m| e(m.container_id, m.exec_id, 0, 0))
            .ok()?,
        "TaskExecStarted" => TaskExecStarted::parse_from_bytes(value)
            .map(|m| e(m.container_id, m.exec_id, m.pid, 0))
            .ok()?,
        "TaskPaused" => TaskPaused::parse_from_bytes(value)
            .map(|m| e(m.container_id, String::new(), 0, 0))
            .ok()?,
        "TaskResumed" => TaskResumed::parse_from_bytes(value)
            .map(|m| e(m.container_id, String::new(), 0, 0))
            .ok()?,
        "TaskCheckpointed" => TaskCheckpointed::parse_from_bytes(value)
            .map(|m| e(m.container_id, String::new(), 0, 0))
            .ok()?,
        _ => return None,
    })
}
