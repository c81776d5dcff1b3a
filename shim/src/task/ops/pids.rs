//! Pids: every process of the container, as the runtime lists them, the execs among them
//! named by their exec id.

use crate::task::container::Container;
use crate::task::error::Result;
use crate::task::job::{later, Order, Reply};
use crate::task::TaskService;
use protobuf::well_known_types::any::Any;
use protobuf::{Message, MessageField};
use skiff_protos::options::ProcessDetails;
use skiff_protos::shim::{PidsRequest, PidsResponse};
use skiff_protos::task::ProcessInfo;
use skiff_protos::type_url;
use std::sync::Arc;

impl TaskService {
    pub fn pids(&self, req: PidsRequest) -> Reply<PidsResponse> {
        let c = match self.container(&req.id) {
            Ok(c) => c,
            Err(e) => return Reply::Now(Err(e)),
        };
        let container = c.clone();
        let work = move || -> Result<Vec<u32>> { Ok(container.runtime().ps(container.id())?) };
        later(Order::AtOnce(req.id.clone()), work, move |_, pids| {
            Ok(PidsResponse {
                processes: pids?.into_iter().map(|pid| process_info(&c, pid)).collect(),
                ..Default::default()
            })
        })
    }
}

fn process_info(c: &Arc<Container>, pid: u32) -> ProcessInfo {
    let details = c.exec_with_pid(pid).map(|exec_id| Any {
        type_url: type_url::PROCESS_DETAILS.into(),
        value: ProcessDetails {
            exec_id,
            ..Default::default()
        }
        .write_to_bytes()
        .unwrap_or_default(),
        ..Default::default()
    });
    ProcessInfo {
        pid,
        info: MessageField::from_option(details),
        ..Default::default()
    }
}
