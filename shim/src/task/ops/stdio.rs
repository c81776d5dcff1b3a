//! CloseIO and ResizePty: a process's stdin closed once what was written has passed, its
//! terminal resized (a no-op for a process without one).

use crate::task::error::Result;
use crate::task::TaskService;
use protobuf::well_known_types::empty::Empty;
use skiff_protos::shim::{CloseIORequest, ResizePtyRequest};

impl TaskService {
    pub fn close_io(&self, req: CloseIORequest) -> Result<Empty> {
        let c = self.container(&req.id)?;
        c.with(&req.exec_id, |p| {
            if req.stdin {
                p.close_stdin();
            }
            Ok(Empty::new())
        })
    }

    pub fn resize_pty(&self, req: ResizePtyRequest) -> Result<Empty> {
        let c = self.container(&req.id)?;
        c.with(&req.exec_id, |p| p.resize(req.width, req.height))?;
        Ok(Empty::new())
    }
}
