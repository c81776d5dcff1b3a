//! The ttrpc face of the Task service: decode, call, encode errors as status codes.

use crate::task::error::ShimError;
use crate::task::TaskService;
use protobuf::well_known_types::empty::Empty;
use skiff_protos::shim::*;
use skiff_protos::shim_ttrpc::Task;
use std::sync::Arc;
use ttrpc::TtrpcContext;

pub struct TaskRpc(pub Arc<TaskService>);

fn reply<T>(method: &str, r: Result<T, ShimError>) -> ttrpc::Result<T> {
    r.map_err(|e| {
        log::debug!("{method}: {e}");
        e.into()
    })
}

impl Task for TaskRpc {
    fn state(&self, _: &TtrpcContext, r: StateRequest) -> ttrpc::Result<StateResponse> {
        reply("State", self.0.state(r))
    }
    fn create(&self, _: &TtrpcContext, r: CreateTaskRequest) -> ttrpc::Result<CreateTaskResponse> {
        reply("Create", self.0.create(r))
    }
    fn start(&self, _: &TtrpcContext, r: StartRequest) -> ttrpc::Result<StartResponse> {
        reply("Start", self.0.start(r))
    }
    fn delete(&self, _: &TtrpcContext, r: DeleteRequest) -> ttrpc::Result<DeleteResponse> {
        reply("Delete", self.0.delete(r))
    }
    fn pids(&self, _: &TtrpcContext, r: PidsRequest) -> ttrpc::Result<PidsResponse> {
        reply("Pids", self.0.pids(r))
    }
    fn pause(&self, _: &TtrpcContext, r: PauseRequest) -> ttrpc::Result<Empty> {
        reply("Pause", self.0.pause(r))
    }
    fn resume(&self, _: &TtrpcContext, r: ResumeRequest) -> ttrpc::Result<Empty> {
        reply("Resume", self.0.resume(r))
    }
    fn checkpoint(&self, _: &TtrpcContext, r: CheckpointTaskRequest) -> ttrpc::Result<Empty> {
        reply("Checkpoint", self.0.checkpoint(r))
    }
    fn kill(&self, _: &TtrpcContext, r: KillRequest) -> ttrpc::Result<Empty> {
        reply("Kill", self.0.kill(r))
    }
    fn exec(&self, _: &TtrpcContext, r: ExecProcessRequest) -> ttrpc::Result<Empty> {
        reply("Exec", self.0.exec(r))
    }
    fn resize_pty(&self, _: &TtrpcContext, r: ResizePtyRequest) -> ttrpc::Result<Empty> {
        reply("ResizePty", self.0.resize_pty(r))
    }
    fn close_io(&self, _: &TtrpcContext, r: CloseIORequest) -> ttrpc::Result<Empty> {
        reply("CloseIO", self.0.close_io(r))
    }
    fn update(&self, _: &TtrpcContext, r: UpdateTaskRequest) -> ttrpc::Result<Empty> {
        reply("Update", self.0.update(r))
    }
    fn wait(&self, _: &TtrpcContext, r: WaitRequest) -> ttrpc::Result<WaitResponse> {
        reply("Wait", self.0.wait(r))
    }
    fn stats(&self, _: &TtrpcContext, r: StatsRequest) -> ttrpc::Result<StatsResponse> {
        reply("Stats", self.0.stats(r))
    }
    fn connect(&self, _: &TtrpcContext, r: ConnectRequest) -> ttrpc::Result<ConnectResponse> {
        reply("Connect", self.0.connect(r))
    }
    fn shutdown(&self, _: &TtrpcContext, r: ShutdownRequest) -> ttrpc::Result<Empty> {
        reply("Shutdown", self.0.shutdown(r))
    }
}
