//! The Sandbox API's RPCs, one file per RPC or pair: create, start (and platform), stop
//! (and wait), status (and ping, metrics), shutdown.

mod create;
mod shutdown;
mod start;
mod status;
mod stop;
