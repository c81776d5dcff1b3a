//! The ttrpc server: the shim's one event loop ([`event_loop`]), which accepts connections
//! from its own uid ([`peer`]), reads request frames ([`connection`]), hands each to the
//! task model ([`dispatch`]), runs runtime commands off the loop ([`jobs`]) and answers
//! with a status decided in one place ([`status`]).

pub mod connection;
pub mod dispatch;
pub mod event_loop;
pub mod jobs;
pub mod peer;
pub mod status;
