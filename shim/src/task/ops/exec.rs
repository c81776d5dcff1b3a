//! Exec adds a process to a running container (described, not started); Start with an
//! exec id has the runtime run it.

use super::create::CONSOLE_TIMEOUT;
use crate::stdio::{ProcessIo, StreamPaths};
use crate::task::container::Container;
use crate::task::error::{Result, ShimError};
use crate::task::process::{Process, Status};
use crate::task::validate;
use crate::task::{read_pid, TaskService};
use protobuf::well_known_types::empty::Empty;
use runc_driver::{ConsoleSocket, ExecOptions, Stdio3};
use skiff_protos::shim::ExecProcessRequest;
use skiff_protos::task_events::{TaskExecAdded, TaskExecStarted};
use skiff_protos::type_url;

impl TaskService {
    pub fn exec(&self, req: ExecProcessRequest) -> Result<Empty> {
        validate::id("exec id", &req.exec_id).map_err(ShimError::InvalidArgument)?;
        let c = self.container(&req.id)?;
        let spec = req
            .spec
            .as_ref()
            .map(|s| s.value.as_slice())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                ShimError::InvalidArgument("exec request carries no process spec".into())
            })?;
        let spec = with_terminal(spec, req.terminal)?;
        let mut procs = c.processes.lock().unwrap();
        if procs.init.status != Status::Running {
            return Err(ShimError::FailedPrecondition(format!(
                "container {:?} is {}: cannot exec in it",
                req.id, procs.init.status
            )));
        }
        if procs.execs.contains_key(&req.exec_id) {
            return Err(ShimError::AlreadyExists(format!(
                "exec {:?} already exists in container {:?}",
                req.exec_id, req.id
            )));
        }
        // The Start that follows has the runtime move the exec into the container's cgroup.
        crate::sys::attach_warmup::begin();
        let paths = StreamPaths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        procs.execs.insert(
            req.exec_id.clone(),
            Process::exec(req.exec_id.clone(), paths, spec),
        );
        self.publish(
            "/tasks/exec-added",
            type_url::TASK_EXEC_ADDED,
            &TaskExecAdded {
                container_id: req.id.clone(),
                exec_id: req.exec_id.clone(),
                ..Default::default()
            },
        );
        Ok(Empty::new())
    }

    /// Runs an added exec. Called with the container's processes locked, so its exit is
    /// handled only after /tasks/exec-started is queued.
    pub(super) fn start_exec(
        &self,
        id: &str,
        c: &Container,
        p: &mut Process,
        exec_id: &str,
    ) -> Result<u32> {
        let spec = p.exec_spec.clone().unwrap_or_default();
        let process_file = c.bundle.join(format!("exec-{exec_id}.json"));
        let pid_file = c.bundle.join(format!("exec-{exec_id}.pid"));
        std::fs::write(&process_file, &spec)
            .map_err(|e| ShimError::internal(format!("writing {}", process_file.display()), e))?;
        let mut opts = ExecOptions {
            process_file: process_file.clone(),
            pid_file: Some(pid_file.clone()),
            console_socket: None,
            detach: true,
        };
        let result = (|| {
            if p.paths.terminal {
                let console = ConsoleSocket::new(None)
                    .map_err(|e| ShimError::internal("creating the console socket", e))?;
                opts.console_socket = Some(console.path().to_path_buf());
                c.runtime.exec(id, &opts, Stdio3::default())?;
                let master = console
                    .receive_master(CONSOLE_TIMEOUT)
                    .map_err(|e| ShimError::internal("receiving the exec's terminal", e))?;
                ProcessIo::terminal(p.paths.clone(), master, &self.pumps)
                    .map_err(|e| ShimError::internal("setting up the exec's terminal", e))
            } else {
                let owner = self.owner(id, c.io_owner.0, c.io_owner.1);
                let (io, stdio) = ProcessIo::pipes(p.paths.clone(), &owner, &self.pumps)
                    .map_err(|e| ShimError::internal("setting up the exec's stdio", e))?;
                c.runtime.exec(id, &opts, stdio)?;
                Ok(io)
            }
        })();
        let _ = std::fs::remove_file(&process_file);
        let pid = result.and_then(|io| {
            p.io = Some(io);
            read_pid(&pid_file)
        });
        let _ = std::fs::remove_file(&pid_file);
        let pid = pid?;
        p.pid = pid;
        p.exec_spec = None;
        p.transition(Status::Running)?;
        self.publish(
            "/tasks/exec-started",
            type_url::TASK_EXEC_STARTED,
            &TaskExecStarted {
                container_id: id.to_string(),
                exec_id: exec_id.to_string(),
                pid,
                ..Default::default()
            },
        );
        Ok(pid)
    }
}

/// The exec's process document with `terminal` as the request says: the request decides
/// whether the shim gives the process a pty, and the runtime must agree with it (runc
/// refuses a console socket for a process without a terminal), as containerd's shims do.
fn with_terminal(spec: &[u8], terminal: bool) -> Result<Vec<u8>> {
    let mut doc: serde_json::Value = serde_json::from_slice(spec)
        .map_err(|e| ShimError::InvalidArgument(format!("exec process spec is not JSON: {e}")))?;
    let Some(process) = doc.as_object_mut() else {
        return Err(ShimError::InvalidArgument(
            "exec process spec is not a JSON object".into(),
        ));
    };
    process.insert("terminal".into(), serde_json::Value::Bool(terminal));
    serde_json::to_vec(&doc).map_err(|e| ShimError::internal("encoding the exec spec", e))
}

#[cfg(test)]
mod tests {
    use super::with_terminal;

    #[test]
    fn the_request_decides_the_terminal() {
        let on = with_terminal(br#"{"args":["sh"],"terminal":false}"#, true).unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&on).unwrap();
        assert_eq!(doc["terminal"], true);
        assert_eq!(doc["args"][0], "sh");
        let off = with_terminal(br#"{"args":["sh"],"terminal":true}"#, false).unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&off).unwrap();
        assert_eq!(doc["terminal"], false);
        assert!(with_terminal(b"[1]", true).is_err());
        assert!(with_terminal(b"nope", true).is_err());
    }
}
