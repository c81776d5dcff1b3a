//! From a request to the task model and back: the method found by name (the same handlers
//! serve `containerd.task.v2.Task` and `.v3.Task`, whose messages are the same for every
//! RPC served here), its payload decoded, the service called, the answer encoded. The
//! Sandbox API's requests go to the sandbox service ([`dispatch_sandbox`]).

use crate::sandbox::SandboxService;
use crate::task::error::{Result, ShimError};
use crate::task::{Reply, TaskService};
use protobuf::Message;
use skiff_protos::sandbox::WaitSandboxRequest;
use skiff_protos::shim::WaitRequest;

const SERVICES: &[&str] = &["containerd.task.v2.Task", "containerd.task.v3.Task"];

/// What the loop does with one request.
pub enum Call {
    Reply(Reply<Vec<u8>>),
    /// A Wait: answered when the process's exit has been reported.
    Wait(WaitRequest),
    /// A WaitSandbox: answered when the sandbox has ended.
    WaitSandbox(WaitSandboxRequest),
}

pub fn dispatch(service: &TaskService, name: &str, method: &str, payload: &[u8]) -> Call {
    log::debug!("/{name}/{method} ({} bytes)", payload.len());
    if !SERVICES.contains(&name) {
        return unimplemented(name, method);
    }
    let s = service;
    match method {
        "Wait" => match decode::<WaitRequest>(payload) {
            Ok(req) => Call::Wait(req),
            Err(e) => Call::Reply(Reply::Now(Err(e))),
        },
        "State" => now(payload, |r| s.state(r)),
        "Create" => later(payload, |r| s.create(r)),
        "Start" => later(payload, |r| s.start(r)),
        "Delete" => later(payload, |r| s.delete(r)),
        "Pids" => later(payload, |r| s.pids(r)),
        "Pause" => later(payload, |r| s.pause(r)),
        "Resume" => later(payload, |r| s.resume(r)),
        "Checkpoint" => later(payload, |r| s.checkpoint(r)),
        "Kill" => later(payload, |r| s.kill(r)),
        "Exec" => now(payload, |r| s.exec(r)),
        "ResizePty" => now(payload, |r| s.resize_pty(r)),
        "CloseIO" => now(payload, |r| s.close_io(r)),
        "Update" => later(payload, |r| s.update(r)),
        "Stats" => now(payload, |r| s.stats(r)),
        "Connect" => now(payload, |r| s.connect(r)),
        "Shutdown" => now(payload, |r| s.shutdown(r)),
        _ => unimplemented(name, method),
    }
}

/// A request of the Sandbox API. Every RPC is answered at once, on the loop (the main
/// thread, whose namespaces are the pod's).
pub fn dispatch_sandbox(sandbox: &SandboxService, method: &str, payload: &[u8]) -> Call {
    let s = sandbox;
    match method {
        "WaitSandbox" => match decode::<WaitSandboxRequest>(payload) {
            Ok(req) => Call::WaitSandbox(req),
            Err(e) => Call::Reply(Reply::Now(Err(e))),
        },
        "CreateSandbox" => now(payload, |r| s.create(r)),
        "StartSandbox" => now(payload, |r| s.start(r)),
        "Platform" => now(payload, |r| s.platform(r)),
        "StopSandbox" => now(payload, |r| s.stop(r)),
        "SandboxStatus" => now(payload, |r| s.status(r)),
        "PingSandbox" => now(payload, |r| s.ping(r)),
        "ShutdownSandbox" => now(payload, |r| s.shutdown(r)),
        "SandboxMetrics" => now(payload, |r| s.metrics(r)),
        _ => unimplemented(crate::sandbox::SERVICE, method),
    }
}

fn unimplemented(name: &str, method: &str) -> Call {
    Call::Reply(Reply::Now(Err(ShimError::Unimplemented(format!(
        "/{name}/{method} is not supported"
    )))))
}

/// An RPC answered at once.
fn now<Req: Message, Resp: Message>(payload: &[u8], rpc: impl FnOnce(Req) -> Result<Resp>) -> Call {
    Call::Reply(Reply::Now(decode(payload).and_then(rpc).map(encode)))
}

/// An RPC that may answer once a runtime command has run.
fn later<Req: Message, Resp: Message>(
    payload: &[u8],
    rpc: impl FnOnce(Req) -> Reply<Resp>,
) -> Call {
    match decode(payload) {
        Ok(req) => Call::Reply(rpc(req).map(encode)),
        Err(e) => Call::Reply(Reply::Now(Err(e))),
    }
}

fn decode<M: Message>(payload: &[u8]) -> Result<M> {
    M::parse_from_bytes(payload)
        .map_err(|e| ShimError::InvalidArgument(format!("undecodable {}: {e}", M::NAME)))
}

fn encode<M: Message>(m: M) -> Vec<u8> {
    m.write_to_bytes().unwrap_or_default()
}
