//! The task model's errors, by kind. The kind each is in skiff's one vocabulary
//! (`skiff-errdefs`), and so the ttrpc status it becomes, is decided in one place,
//! [`crate::server::status`].

/// Why a request was not done.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// The request is malformed: bad id, bad path, options of an unknown type.
    #[error("{0}")]
    InvalidArgument(String),
    /// No such container or process, or the process has ended.
    #[error("{0}")]
    NotFound(String),
    /// A container or process with that id is already there.
    #[error("{0}")]
    AlreadyExists(String),
    /// The process is not in a state that allows this (exec into a stopped task...).
    #[error("{0}")]
    FailedPrecondition(String),
    /// The OCI runtime refused or failed.
    #[error(transparent)]
    Runtime(#[from] skiff_oci_runtime::Error),
    /// The RPC exists but this shim does not do it.
    #[error("{0}")]
    Unimplemented(String),
    /// The shim cannot take more work now (no thread for a runtime command, too many
    /// parked Waits).
    #[error("{0}")]
    ResourceExhausted(String),
    /// Anything else: a system call failed.
    #[error("{0}")]
    Internal(String),
}

pub type Result<T> = std::result::Result<T, ShimError>;

impl ShimError {
    pub fn internal(context: impl std::fmt::Display, err: impl std::fmt::Display) -> Self {
        ShimError::Internal(format!("{context}: {err}"))
    }
}

impl From<crate::options::OptionsError> for ShimError {
    fn from(e: crate::options::OptionsError) -> Self {
        ShimError::InvalidArgument(e.0)
    }
}
