//! The calls a running task's shim answers: Start, Kill, Exec, Pause, Resume,
//! ResizePty, CloseIO, Update, Pids, Stats.

use super::TimedCall;
use super::{shim_err, NewExec, TaskInfo, Tasks, CALL};
use crate::error::{Error, Result};
use crate::store::namespace;
use protobuf::well_known_types::any::Any;
use protobuf::{Message, MessageField};
use skiff_protos::shim as api;

impl Tasks {
    pub fn start(&self, ns: &str, id: &str, exec_id: &str) -> Result<TaskInfo> {
        let ns = namespace(ns)?;
        self.locks
            .run(ns, id, || self.start_locked(ns, id, exec_id))
    }

    fn start_locked(&self, ns: &str, id: &str, exec_id: &str) -> Result<TaskInfo> {
        let c = self.shim(ns, id)?;
        let r: api::StartResponse = c
            .timed_call(
                "Start",
                &api::StartRequest {
                    id: id.into(),
                    exec_id: exec_id.into(),
                    ..Default::default()
                },
                CALL,
            )
            .map_err(shim_err)?;
        if exec_id.is_empty() {
            self.set_status(ns, id, "running", None)?;
        }
        let mut t = self.get(ns, id, exec_id)?;
        t.pid = r.pid;
        Ok(t)
    }

    pub fn kill(&self, ns: &str, id: &str, exec_id: &str, signal: u32, all: bool) -> Result<()> {
        let ns = namespace(ns)?;
        let req = api::KillRequest {
            id: id.into(),
            exec_id: exec_id.into(),
            signal,
            all,
            ..Default::default()
        };
        self.shim(ns, id)?
            .timed_call::<_, protobuf::well_known_types::empty::Empty>("Kill", &req, CALL)
            .map_err(shim_err)?;
        Ok(())
    }

    pub fn exec(&self, ns: &str, id: &str, e: NewExec) -> Result<()> {
        let ns = namespace(ns)?;
        crate::error::check_id("exec id", &e.exec_id)?;
        let container = self.store.get_container(ns, id)?;
        let process = crate::spec::exec_process(&container.spec, e.args, e.env, e.terminal)?;
        let [stdin, stdout, stderr] = e.stdio;
        let req = api::ExecProcessRequest {
            id: id.into(),
            exec_id: e.exec_id,
            terminal: e.terminal,
            stdin,
            stdout,
            stderr,
            spec: MessageField::some(Any {
                type_url: "types.containerd.io/opencontainers/runtime-spec/1/Process".into(),
                value: process,
                ..Default::default()
            }),
            ..Default::default()
        };
        self.simple(ns, id, "Exec", &req)
    }

    fn simple<Req: Message>(&self, ns: &str, id: &str, method: &str, req: &Req) -> Result<()> {
        let ns = namespace(ns)?;
        self.shim(ns, id)?
            .timed_call::<_, protobuf::well_known_types::empty::Empty>(method, req, CALL)
            .map_err(shim_err)?;
        Ok(())
    }

    pub fn pause(&self, ns: &str, id: &str) -> Result<()> {
        self.simple(
            ns,
            id,
            "Pause",
            &api::PauseRequest {
                id: id.into(),
                ..Default::default()
            },
        )
    }

    pub fn resume(&self, ns: &str, id: &str) -> Result<()> {
        self.simple(
            ns,
            id,
            "Resume",
            &api::ResumeRequest {
                id: id.into(),
                ..Default::default()
            },
        )
    }

    pub fn resize(&self, ns: &str, id: &str, exec_id: &str, width: u32, height: u32) -> Result<()> {
        self.simple(
            ns,
            id,
            "ResizePty",
            &api::ResizePtyRequest {
                id: id.into(),
                exec_id: exec_id.into(),
                width,
                height,
                ..Default::default()
            },
        )
    }

    pub fn close_stdin(&self, ns: &str, id: &str, exec_id: &str) -> Result<()> {
        self.simple(
            ns,
            id,
            "CloseIO",
            &api::CloseIORequest {
                id: id.into(),
                exec_id: exec_id.into(),
                stdin: true,
                ..Default::default()
            },
        )
    }

    pub fn update_memory(&self, ns: &str, id: &str, limit: i64) -> Result<()> {
        let req = api::UpdateTaskRequest {
            id: id.into(),
            resources: MessageField::some(Any {
                type_url: "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources".into(),
                value: crate::spec::memory_update(limit)?,
                ..Default::default()
            }),
            ..Default::default()
        };
        self.simple(ns, id, "Update", &req)
    }

    pub fn pids(&self, ns: &str, id: &str) -> Result<Vec<u32>> {
        let ns = namespace(ns)?;
        let r: api::PidsResponse = self
            .shim(ns, id)?
            .timed_call(
                "Pids",
                &api::PidsRequest {
                    id: id.into(),
                    ..Default::default()
                },
                CALL,
            )
            .map_err(shim_err)?;
        Ok(r.processes.iter().map(|p| p.pid).collect())
    }

    /// (memory usage, memory limit, CPU ns, pids) from the shim's cgroup metrics.
    pub fn stats(&self, ns: &str, id: &str) -> Result<(u64, u64, u64, u64)> {
        let ns = namespace(ns)?;
        let r: api::StatsResponse = self
            .shim(ns, id)?
            .timed_call(
                "Stats",
                &api::StatsRequest {
                    id: id.into(),
                    ..Default::default()
                },
                CALL,
            )
            .map_err(shim_err)?;
        let any = r
            .stats
            .as_ref()
            .ok_or_else(|| Error::Internal("the shim sent no stats".into()))?;
        let bad = |e: protobuf::Error| {
            Error::Internal(format!("undecodable stats {}: {e}", any.type_url))
        };
        if any.type_url.ends_with("cgroups.v1.Metrics") {
            let m = skiff_protos::metrics_v1::Metrics::parse_from_bytes(&any.value).map_err(bad)?;
            let (usage, limit) = m
                .memory
                .usage
                .as_ref()
                .map(|u| (u.usage, u.limit))
                .unwrap_or_default();
            let cpu = m.cpu.usage.as_ref().map(|u| u.total).unwrap_or(0);
            Ok((usage, limit, cpu, m.pids.current))
        } else {
            let m = skiff_protos::metrics_v2::Metrics::parse_from_bytes(&any.value).map_err(bad)?;
            Ok((
                m.memory.usage,
                m.memory.usage_limit,
                m.cpu.usage_usec * 1000,
                m.pids.current,
            ))
        }
    }
}
