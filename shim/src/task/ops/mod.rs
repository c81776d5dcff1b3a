//! The Task API's RPCs, as the task model performs them: `create` (new containers),
//! `exec` (added processes), `control` (start, kill, delete, pause, state...).

mod control;
mod create;
mod exec;
