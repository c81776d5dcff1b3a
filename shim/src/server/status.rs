//! The one place where an error of the task model becomes a ttrpc status code, which
//! containerd turns back into its own error kinds (errdefs).

use crate::task::error::ShimError;
use runc_driver::Error as RuntimeError;
use ttrpc::Code;

pub fn code(e: &ShimError) -> Code {
    match e {
        ShimError::InvalidArgument(_) => Code::INVALID_ARGUMENT,
        ShimError::NotFound(_) => Code::NOT_FOUND,
        ShimError::AlreadyExists(_) => Code::ALREADY_EXISTS,
        ShimError::FailedPrecondition(_) => Code::FAILED_PRECONDITION,
        ShimError::Unimplemented(_) => Code::UNIMPLEMENTED,
        ShimError::Unavailable(_) => Code::RESOURCE_EXHAUSTED,
        ShimError::Internal(_) => Code::INTERNAL,
        ShimError::Runtime(r) => match r {
            RuntimeError::Spawn { .. } => Code::FAILED_PRECONDITION,
            RuntimeError::Unsupported { .. } => Code::UNIMPLEMENTED,
            RuntimeError::NotFound { .. } | RuntimeError::NotRunning { .. } => Code::NOT_FOUND,
            _ => Code::UNKNOWN,
        },
    }
}

/// The status a reply carries for `e`.
pub fn of(e: &ShimError) -> ttrpc::Status {
    ttrpc::get_status(code(e), e.to_string())
}

/// The status of a success.
pub fn ok() -> ttrpc::Status {
    ttrpc::get_status(Code::OK, String::new())
}
