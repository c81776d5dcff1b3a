//! A manager's side of a shim-v2 binary, whoever wrote the shim: launching it as
//! containerd does ([`launch`]), reading what its `start` answered ([`bootstrap`]), calling
//! its Task API ([`task`]) and reading the task events it publishes ([`events`]). skiffd
//! and shimtest both drive shims through it.

pub mod bootstrap;
pub mod events;
pub mod launch;
pub mod task;

pub use bootstrap::{parse_bootstrap, parse_start_reply, Bootstrap};
pub use launch::{socket_path, Launch};
pub use task::TaskClient;
