//! The one place where an error of the task model gets its kind in skiff's vocabulary,
//! and so the ttrpc status code that containerd turns back into its own error kinds
//! (errdefs).

use crate::task::error::ShimError;
use skiff_errdefs::{Kind, Kinded};
use skiff_oci_runtime::Error as RuntimeError;

impl Kinded for ShimError {
    fn kind(&self) -> Kind {
        match self {
            ShimError::InvalidArgument(_) => Kind::InvalidArgument,
            ShimError::NotFound(_) => Kind::NotFound,
            ShimError::AlreadyExists(_) => Kind::AlreadyExists,
            ShimError::FailedPrecondition(_) => Kind::FailedPrecondition,
            ShimError::Unimplemented(_) => Kind::Unimplemented,
            ShimError::ResourceExhausted(_) => Kind::ResourceExhausted,
            ShimError::Internal(_) => Kind::Internal,
            ShimError::Runtime(r) => match r {
                // The runtime binary cannot be run: the options name a missing one.
                RuntimeError::Spawn { .. } => Kind::FailedPrecondition,
                RuntimeError::Unsupported { .. } => Kind::Unimplemented,
                RuntimeError::NotFound { .. } | RuntimeError::NotRunning { .. } => Kind::NotFound,
                _ => Kind::Unknown,
            },
        }
    }
}

/// The status a reply carries for `e`.
pub fn of(e: &ShimError) -> ttrpc::Status {
    e.status()
}

/// The status of a success.
pub fn ok() -> ttrpc::Status {
    ttrpc::get_status(ttrpc::Code::OK, String::new())
}
