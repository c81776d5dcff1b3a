//! Exec adds a process to a running container: described, not started (Start with its
//! exec id has the runtime run it).

use crate::stdio::StreamPaths;
use crate::task::error::{Result, ShimError};
use crate::task::process::Process;
use crate::task::{validate, TaskService};
use protobuf::well_known_types::empty::Empty;
use skiff_protos::shim::ExecProcessRequest;

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
        let paths = StreamPaths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        c.add_exec(Process::exec(req.exec_id.clone(), paths, spec))?;
        self.announce_exec_added(&req.id, &req.exec_id);
        Ok(Empty::new())
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
