//! The task events the service publishes, one function each, with containerd's topics and
//! type URLs.

use super::TaskService;
use crate::events::timestamp;
use crate::sys::reaper::Exit;
use protobuf::MessageField;
use skiff_protos::shim::CreateTaskRequest;
use skiff_protos::task_events::*;
use skiff_protos::type_url;

impl TaskService {
    pub(super) fn announce_create(&self, req: &CreateTaskRequest, pid: u32) {
        let event = TaskCreate {
            container_id: req.id.clone(),
            bundle: req.bundle.clone(),
            rootfs: req.rootfs.clone(),
            io: MessageField::some(TaskIO {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
                ..Default::default()
            }),
            checkpoint: req.checkpoint.clone(),
            pid,
            ..Default::default()
        };
        self.publish("/tasks/create", type_url::TASK_CREATE, &event);
    }

    pub(super) fn announce_start(&self, id: &str, pid: u32) {
        let event = TaskStart {
            container_id: id.to_string(),
            pid,
            ..Default::default()
        };
        self.publish("/tasks/start", type_url::TASK_START, &event);
    }

    pub(super) fn announce_exec_added(&self, id: &str, exec_id: &str) {
        let event = TaskExecAdded {
            container_id: id.to_string(),
            exec_id: exec_id.to_string(),
            ..Default::default()
        };
        self.publish("/tasks/exec-added", type_url::TASK_EXEC_ADDED, &event);
    }

    pub(super) fn announce_exec_started(&self, id: &str, exec_id: &str, pid: u32) {
        let event = TaskExecStarted {
            container_id: id.to_string(),
            exec_id: exec_id.to_string(),
            pid,
            ..Default::default()
        };
        self.publish("/tasks/exec-started", type_url::TASK_EXEC_STARTED, &event);
    }

    /// An exit: `exec_id` is empty for the init, whose exit is named by the container.
    pub(super) fn announce_exit(&self, id: &str, exec_id: &str, exit: Exit) {
        let event = TaskExit {
            container_id: id.to_string(),
            id: if exec_id.is_empty() { id } else { exec_id }.to_string(),
            pid: exit.pid,
            exit_status: exit.status,
            exited_at: MessageField::some(timestamp(exit.at)),
            ..Default::default()
        };
        self.publish("/tasks/exit", type_url::TASK_EXIT, &event);
    }

    pub(super) fn announce_delete(&self, id: &str, exit: Exit) {
        let event = TaskDelete {
            container_id: id.to_string(),
            pid: exit.pid,
            exit_status: exit.status,
            exited_at: MessageField::some(timestamp(exit.at)),
            ..Default::default()
        };
        self.publish("/tasks/delete", type_url::TASK_DELETE, &event);
    }

    pub(super) fn announce_oom(&self, id: &str) {
        let event = TaskOOM {
            container_id: id.to_string(),
            ..Default::default()
        };
        self.publish("/tasks/oom", type_url::TASK_OOM, &event);
    }

    pub(super) fn announce_paused(&self, id: &str) {
        let event = TaskPaused {
            container_id: id.to_string(),
            ..Default::default()
        };
        self.publish("/tasks/paused", type_url::TASK_PAUSED, &event);
    }

    pub(super) fn announce_resumed(&self, id: &str) {
        let event = TaskResumed {
            container_id: id.to_string(),
            ..Default::default()
        };
        self.publish("/tasks/resumed", type_url::TASK_RESUMED, &event);
    }

    pub(super) fn announce_checkpointed(&self, id: &str, path: &str) {
        let event = TaskCheckpointed {
            container_id: id.to_string(),
            checkpoint: path.to_string(),
            ..Default::default()
        };
        self.publish("/tasks/checkpointed", type_url::TASK_CHECKPOINTED, &event);
    }
}
