//! containerd-shim-skiff-v2 as a library: the binary's `main` parses the command line
//! and calls [`start::run`], [`delete::run`] or [`serve::run`]. The modules are public
//! so that tests and fuzz targets reach the same request handling the binary uses.

pub mod address;
pub mod attach_warmup;
pub mod bootstrap;
pub mod cli;
pub mod container;
pub mod delete;
pub mod driver;
pub mod error;
pub mod events;
pub mod info;
pub mod logging;
pub mod mount;
pub mod oom;
pub mod options;
pub mod options_file;
pub mod poller;
pub mod process;
pub mod reaper;
pub mod rpc;
pub mod serve;
pub mod server;
pub mod service;
pub mod shim_cgroup;
pub mod spec;
pub mod start;
pub mod stdio;
pub mod validate;
pub mod wire;
