//! Exits the reaper hands over, and Wait.

use super::TaskService;
use crate::error::Result;
use crate::events::timestamp;
use crate::process::Status;
use crate::reaper::Exit;
use protobuf::MessageField;
use skiff_protos::shim::{WaitRequest, WaitResponse};
use skiff_protos::task_events::TaskExit;
use skiff_protos::type_url;
use std::time::Duration;

/// How long an exit waits for the process's output to drain before it is reported
/// anyway (a process that leaves a child holding its stdout open).
const OUTPUT_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Exits of pids nobody has claimed yet, kept for a process whose runtime command has
/// not returned its pid.
const UNCLAIMED_LIMIT: usize = 256;

impl TaskService {
    /// Called for every exit the reaper does not route to a runtime command.
    pub fn handle_exit(&self, exit: Exit) {
        let owner = {
            let mut index = self.pids.lock().unwrap();
            match index.owners.remove(&exit.pid) {
                Some(owner) => owner,
                None => {
                    if index.unclaimed.len() >= UNCLAIMED_LIMIT {
                        index.unclaimed.pop_front();
                    }
                    index.unclaimed.push_back(exit);
                    return;
                }
            }
        };
        let (container_id, exec_id) = owner;
        let Ok(c) = self.container(&container_id) else {
            return;
        };
        // Let the output drain first, without holding the container: a user reading the
        // exit has then read everything the process wrote.
        let waiter = {
            let procs = c.processes.lock().unwrap();
            match procs.get(&exec_id) {
                Ok(p) if p.pid == exit.pid => p.io.as_ref().map(|io| io.output_waiter()),
                _ => return,
            }
        };
        if let Some(w) = waiter {
            if !w.wait(OUTPUT_DRAIN_TIMEOUT) {
                log::warn!(
                    "output of {container_id} {exec_id} still open {OUTPUT_DRAIN_TIMEOUT:?} after its exit"
                );
            }
        }
        let mut procs = c.processes.lock().unwrap();
        let Ok(p) = procs.get_mut(&exec_id) else {
            return;
        };
        if p.pid != exit.pid || p.status == Status::Deleted {
            return;
        }
        if exec_id.is_empty() {
            // An OOM kill of the container is reported before its exit.
            self.oom.check(&container_id);
        }
        p.set_exited(exit);
        // Nothing more will be read from a finished process's stdin.
        if let Some(io) = p.io.as_mut() {
            io.close_stdin();
        }
        self.publish(
            "/tasks/exit",
            type_url::TASK_EXIT,
            &TaskExit {
                container_id: container_id.clone(),
                id: if exec_id.is_empty() {
                    container_id.clone()
                } else {
                    exec_id.clone()
                },
                pid: exit.pid,
                exit_status: exit.status,
                exited_at: MessageField::some(timestamp(exit.at)),
                ..Default::default()
            },
        );
        c.exited.notify_all();
    }

    pub fn wait(&self, req: WaitRequest) -> Result<WaitResponse> {
        let c = self.container(&req.id)?;
        let mut procs = c.processes.lock().unwrap();
        loop {
            if let Some(r) = exited(procs.get(&req.exec_id)?) {
                return Ok(r);
            }
            procs = c.exited.wait(procs).unwrap();
        }
    }

    /// Wait without blocking: None while the process runs (the server parks the
    /// request and asks again after the next exit).
    pub fn try_wait(&self, req: &WaitRequest) -> Result<Option<WaitResponse>> {
        let c = self.container(&req.id)?;
        let procs = c.processes.lock().unwrap();
        Ok(exited(procs.get(&req.exec_id)?))
    }
}

fn exited(p: &crate::process::Process) -> Option<WaitResponse> {
    match (p.status, p.exit) {
        (Status::Stopped | Status::Deleted, Some(exit)) => Some(WaitResponse {
            exit_status: exit.status,
            exited_at: MessageField::some(timestamp(exit.at)),
            ..Default::default()
        }),
        _ => None,
    }
}
