//! What can go wrong in the manager, by the status a client sees.

use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidArgument(String),
    /// The request is valid but the state forbids it (an image in use, a snapshot with
    /// children).
    #[error("{0}")]
    FailedPrecondition(String),
    /// Content that does not match its digest, or an archive that cannot be read.
    #[error("{0}")]
    Corrupt(String),
    /// An import went over one of its limits (`crate::limits`).
    #[error("{0}")]
    LimitExceeded(String),
    /// A registry that cannot be reached, or went away.
    #[error("{0}")]
    Unavailable(String),
    /// A registry that wants a login it did not get, or refused the one it got.
    #[error("{0}")]
    Unauthenticated(String),
    /// The client cancelled (or went away from) a long request.
    #[error("{0}")]
    Cancelled(String),
    #[error("{0}")]
    Io(String),
    #[error("metadata database: {0}")]
    Db(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        Error::Db(e.to_string())
    }
}

/// An I/O error with what was being done.
pub fn io(what: impl fmt::Display, e: std::io::Error) -> Error {
    Error::Io(format!("{what}: {e}"))
}

impl From<Error> for ttrpc::Error {
    fn from(e: Error) -> ttrpc::Error {
        use ttrpc::Code;
        let code = match &e {
            Error::NotFound(_) => Code::NOT_FOUND,
            Error::AlreadyExists(_) => Code::ALREADY_EXISTS,
            Error::InvalidArgument(_) | Error::Corrupt(_) => Code::INVALID_ARGUMENT,
            Error::LimitExceeded(_) => Code::RESOURCE_EXHAUSTED,
            Error::FailedPrecondition(_) => Code::FAILED_PRECONDITION,
            Error::Unavailable(_) => Code::UNAVAILABLE,
            Error::Unauthenticated(_) => Code::UNAUTHENTICATED,
            Error::Cancelled(_) => Code::CANCELLED,
            Error::Io(_) | Error::Db(_) => Code::INTERNAL,
        };
        ttrpc::Error::RpcStatus(ttrpc::get_status(code, e.to_string()))
    }
}

/// Names (ids, keys, image names) from requests: no path tricks, no control characters.
pub fn check_name(kind: &str, name: &str, max: usize) -> Result<()> {
    if name.is_empty() {
        return Err(Error::InvalidArgument(format!("{kind} must not be empty")));
    }
    if name.len() > max {
        return Err(Error::InvalidArgument(format!(
            "{kind} {name:?} is longer than {max} characters"
        )));
    }
    if name.chars().any(|c| c.is_control() || c.is_whitespace()) || name == "." || name == ".." {
        return Err(Error::InvalidArgument(format!(
            "{kind} {name:?} is not valid"
        )));
    }
    Ok(())
}

/// Container ids and namespaces: letters and digits with single '.', '_' or '-' between.
pub fn check_id(kind: &str, id: &str) -> Result<()> {
    check_name(kind, id, 76)?;
    let ok = id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && id.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !ok {
        return Err(Error::InvalidArgument(format!(
            "{kind} {id:?} is not valid: use letters and digits separated by '.', '_' or '-'"
        )));
    }
    Ok(())
}
