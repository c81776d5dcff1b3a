//! The Task API's RPCs as the task model performs them, one file per RPC or pair:
//! create, start, exec, kill, delete, pause (and resume), update, checkpoint, pids,
//! state (and stats), stdio (CloseIO, ResizePty), shim (Connect, Shutdown).

mod checkpoint;
mod create;
mod delete;
mod exec;
mod kill;
mod pause;
mod pids;
mod shim;
mod start;
mod state;
mod stdio;
mod update;
