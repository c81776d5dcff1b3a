//! The runtime options: how a request's options are decoded ([`decode`]), the shim's own
//! options file ([`file`]), the settings a container's runtime is made from ([`settings`]),
//! and who performs the OCI runtime's work for this binary ([`driver`]).

pub mod decode;
pub mod driver;
pub mod file;
pub mod settings;

pub use decode::{decode, is_options_type};
pub use settings::{RuntimeSettings, DEFAULT_RUNTIME_BINARY};

/// Runtime options that cannot be used: of an unknown type, undecodable, or a bad file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OptionsError(pub String);
