//! The shim's errors, and the ttrpc status codes containerd turns them back into its own
//! error kinds (errdefs) with.

use std::fmt;
use ttrpc::Code;

#[derive(Debug)]
pub enum ShimError {
    /// The request is malformed: bad id, bad path, options of an unknown type.
    InvalidArgument(String),
    /// No such container or process.
    NotFound(String),
    /// A container with that id is already there.
    AlreadyExists(String),
    /// The process is not in a state that allows this (exec into a stopped task...).
    FailedPrecondition(String),
    /// The OCI runtime refused or failed.
    Runtime(runc_driver::Error),
    /// The RPC exists but this shim does not do it (yet).
    Unimplemented(String),
    /// Anything else: a system call failed.
    Internal(String),
}

pub type Result<T> = std::result::Result<T, ShimError>;

impl ShimError {
    pub fn code(&self) -> Code {
        match self {
            ShimError::InvalidArgument(_) => Code::INVALID_ARGUMENT,
            ShimError::NotFound(_) => Code::NOT_FOUND,
            ShimError::AlreadyExists(_) => Code::ALREADY_EXISTS,
            ShimError::FailedPrecondition(_) => Code::FAILED_PRECONDITION,
            ShimError::Runtime(runc_driver::Error::Spawn { .. }) => Code::FAILED_PRECONDITION,
            ShimError::Runtime(runc_driver::Error::Unsupported { .. }) => Code::UNIMPLEMENTED,
            ShimError::Runtime(_) => Code::UNKNOWN,
            ShimError::Unimplemented(_) => Code::UNIMPLEMENTED,
            ShimError::Internal(_) => Code::INTERNAL,
        }
    }

    pub fn internal(context: impl fmt::Display, err: impl fmt::Display) -> Self {
        ShimError::Internal(format!("{context}: {err}"))
    }
}

impl fmt::Display for ShimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShimError::InvalidArgument(m)
            | ShimError::NotFound(m)
            | ShimError::AlreadyExists(m)
            | ShimError::FailedPrecondition(m)
            | ShimError::Unimplemented(m)
            | ShimError::Internal(m) => f.write_str(m),
            ShimError::Runtime(e) => write!(f, "{e}"),
        }
    }
}

impl From<runc_driver::Error> for ShimError {
    fn from(e: runc_driver::Error) -> Self {
        ShimError::Runtime(e)
    }
}

impl From<crate::options::OptionsError> for ShimError {
    fn from(e: crate::options::OptionsError) -> Self {
        ShimError::InvalidArgument(e.0)
    }
}

impl From<ShimError> for ttrpc::Error {
    fn from(e: ShimError) -> Self {
        ttrpc::Error::RpcStatus(ttrpc::get_status(e.code(), e.to_string()))
    }
}
