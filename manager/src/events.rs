//! The `Events/Forward` endpoint shims publish to (their TTRPC_ADDRESS): exits are
//! recorded for their tasks, and every event goes into the [`crate::event_log::EventLog`].

use crate::storage::db::now;
use crate::tasks::Tasks;
use skiff_protos::events::ForwardRequest;
use skiff_protos::events_ttrpc::{create_events, Events};
use skiff_protos::manager::Event;
use std::sync::Arc;

pub struct Forwarded(pub Arc<Tasks>);

impl Events for Forwarded {
    fn forward(
        &self,
        _: &ttrpc::TtrpcContext,
        req: ForwardRequest,
    ) -> ttrpc::Result<protobuf::well_known_types::empty::Empty> {
        if let Some(env) = req.envelope.as_ref() {
            let decoded = env
                .event
                .as_ref()
                .and_then(|a| skiff_shim_client::events::decode(&a.type_url, &a.value))
                .unwrap_or_default();
            if env.topic == "/tasks/exit" {
                self.0.on_exit(
                    &env.namespace,
                    &decoded.container_id,
                    &decoded.exec_id,
                    decoded.exit_status,
                );
            }
            crate::log::debug(&format!(
                "event {} {} {}",
                env.namespace, env.topic, decoded.container_id
            ));
            self.0.events.push(Event {
                namespace: env.namespace.clone(),
                topic: env.topic.clone(),
                container_id: decoded.container_id,
                exec_id: decoded.exec_id,
                pid: decoded.pid,
                exit_status: decoded.exit_status,
                at: Some(crate::storage::db::timestamp_nanos(env.timestamp.as_ref()))
                    .filter(|t| *t > 0)
                    .unwrap_or_else(now),
                ..Default::default()
            });
        }
        Ok(Default::default())
    }
}

pub fn service(
    tasks: Arc<Tasks>,
) -> std::collections::HashMap<String, Box<dyn ttrpc::MethodHandler + Send + Sync>> {
    create_events(Arc::new(Forwarded(tasks)))
}
