//! The ttrpc wire format the shim speaks itself: framing.

pub mod frame;
