//! Pause and Resume: the runtime freezes or thaws every process of the container (off the
//! loop); the init's status and the event follow on the loop.

use crate::task::container::Container;
use crate::task::error::Result;
use crate::task::job::{later, Order, Reply};
use crate::task::state::Event;
use crate::task::TaskService;
use protobuf::well_known_types::empty::Empty;
use skiff_protos::shim::{PauseRequest, ResumeRequest};
use std::sync::Arc;

impl TaskService {
    pub fn pause(&self, req: PauseRequest) -> Reply<Empty> {
        self.freeze(&req.id, Event::Pause)
    }

    pub fn resume(&self, req: ResumeRequest) -> Reply<Empty> {
        self.freeze(&req.id, Event::Resume)
    }

    /// `event` is Pause or Resume.
    fn freeze(&self, id: &str, event: Event) -> Reply<Empty> {
        let c = match self.container(id) {
            Ok(c) => c,
            Err(e) => return Reply::Now(Err(e)),
        };
        if let Err(e) = c.with_init(|p| p.check(event)) {
            return Reply::Now(Err(e));
        }
        let container = c.clone();
        let work = move || -> Result<()> {
            let (runtime, id) = (container.runtime(), container.id());
            match event {
                Event::Pause => runtime.pause(id)?,
                _ => runtime.resume(id)?,
            }
            Ok(())
        };
        later(Order::InTurn(id.to_string()), work, move |service, r| {
            r?;
            service.frozen(&c, event)
        })
    }

    fn frozen(&self, c: &Arc<Container>, event: Event) -> Result<Empty> {
        c.with_init(|p| match event {
            Event::Pause => p.paused(),
            _ => p.resumed(),
        })?;
        match event {
            Event::Pause => self.announce_paused(c.id()),
            _ => self.announce_resumed(c.id()),
        }
        Ok(Empty::new())
    }
}
