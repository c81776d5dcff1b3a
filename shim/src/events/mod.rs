//! Task events for the manager: queued in order, forwarded to its ttrpc events endpoint
//! (`TTRPC_ADDRESS`) by one sender, retried while it is away.

pub mod client;
pub mod publisher;

pub use publisher::{timestamp, EventPublisher};
