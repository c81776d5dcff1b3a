//! containerd-shim-skiff-v2 as a library: the binary's `main` calls [`cli::main`] with the
//! driver of its OCI runtime. The folders are the layers a request goes down through:
//!
//! - [`cli`]: the command line (`start`, `delete`, `-info`, serving);
//! - [`server`]: the ttrpc server, one event loop on the main thread;
//! - [`sandbox`]: containerd's Sandbox API: the shim holds a pod without a pause
//!   container;
//! - [`task`]: the task model: the service, containers, processes, their state machine;
//! - [`stdio`] and [`options`]: the containers' streams, and the runtime options;
//! - [`events`]: publishing task events to the manager;
//! - [`wire`]: ttrpc's framing, shared by the server and the events client;
//! - [`sys`]: system helpers (the reaper, the poller, mounts, cgroups, the log).
//!
//! The modules are public so that tests and fuzz targets reach the same code the binary
//! runs.

pub mod cli;
pub mod events;
pub mod options;
pub mod sandbox;
pub mod server;
pub mod stdio;
pub mod sys;
pub mod task;
pub mod wire;
