//! The ttrpc server: the shim's one event loop, which accepts connections, reads request
//! frames and hands each to the task model through [`dispatch`].

pub mod dispatch;
pub mod event_loop;
