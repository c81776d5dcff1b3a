//! Exits the reaper hands over, reported once the process's output has drained, and
//! Wait.

use crate::events::timestamp;
use crate::sys::reaper::Exit;
use crate::task::error::Result;
use crate::task::state::Status;
use crate::task::TaskService;
use protobuf::MessageField;
use skiff_protos::shim::{WaitRequest, WaitResponse};
use skiff_protos::task_events::TaskExit;
use skiff_protos::type_url;
use std::time::{Duration, Instant};

/// How long an exit waits for the process's output to drain before it is reported
/// anyway (a process that leaves a child holding its stdout open).
const OUTPUT_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Exits of pids nobody has claimed yet, kept for a process whose runtime command has
/// not returned its pid.
const UNCLAIMED_LIMIT: usize = 256;

/// An exit waiting for its process's output to drain.
pub(super) struct PendingExit {
    exit: Exit,
    container_id: String,
    exec_id: String,
    deadline: Instant,
}

impl TaskService {
    /// Called by the loop for every exit no runtime command claimed.
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
        if exec_id.is_empty() {
            self.kill_remaining(&container_id);
        }
        // The exit is reported once the output has drained: a user reading the exit
        // has then read everything the process wrote.
        self.pending_exits.lock().unwrap().push(PendingExit {
            exit,
            container_id,
            exec_id,
            deadline: Instant::now() + OUTPUT_DRAIN_TIMEOUT,
        });
    }

    /// A container without a PID namespace of its own keeps its other processes when its
    /// init exits (a worker that forked, an exec): they are killed now, as containerd's
    /// shims do, so that none outlives its container and holds its output open.
    fn kill_remaining(&self, container_id: &str) {
        let Ok(c) = self.container(container_id) else {
            return;
        };
        if !c.shares_pid_namespace {
            return;
        }
        let all = runc_driver::KillOptions { all: true };
        if let Err(e) = c.runtime.kill(container_id, libc::SIGKILL as u32, &all) {
            log::warn!("{container_id}: killing what its init left running: {e}");
        }
    }

    /// Reports the exits whose output has drained, or that have waited long enough.
    /// Returns when to look again for those still waiting.
    pub fn report_exits(&self) -> Option<Instant> {
        let waiting = std::mem::take(&mut *self.pending_exits.lock().unwrap());
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        let mut still = Vec::new();
        for pending in waiting {
            match self.output_drained(&pending) {
                Some(false) if now < pending.deadline => {
                    next = Some(next.map_or(pending.deadline, |n| n.min(pending.deadline)));
                    still.push(pending);
                }
                Some(drained) => {
                    if !drained {
                        log::warn!(
                            "output of {} {} still open {OUTPUT_DRAIN_TIMEOUT:?} after its exit",
                            pending.container_id,
                            pending.exec_id
                        );
                    }
                    self.report_exit(pending);
                }
                // The process is gone (deleted, or replaced).
                None => {}
            }
        }
        self.pending_exits.lock().unwrap().extend(still);
        next
    }

    fn output_drained(&self, pending: &PendingExit) -> Option<bool> {
        let c = self.container(&pending.container_id).ok()?;
        let procs = c.processes.lock().unwrap();
        match procs.get(&pending.exec_id) {
            Ok(p) if p.pid == pending.exit.pid => {
                Some(p.io.as_ref().is_none_or(|io| io.output_drained()))
            }
            _ => None,
        }
    }

    fn report_exit(&self, pending: PendingExit) {
        let PendingExit {
            exit,
            container_id,
            exec_id,
            ..
        } = pending;
        let Ok(c) = self.container(&container_id) else {
            return;
        };
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

fn exited(p: &crate::task::process::Process) -> Option<WaitResponse> {
    match (p.status, p.exit) {
        (Status::Stopped | Status::Deleted, Some(exit)) => Some(WaitResponse {
            exit_status: exit.status,
            exited_at: MessageField::some(timestamp(exit.at)),
            ..Default::default()
        }),
        _ => None,
    }
}
