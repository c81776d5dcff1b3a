//! What can go wrong in the manager. Each error has its kind in skiff's one vocabulary
//! (`skiff-errdefs`), which decides the status a client sees; I/O and database errors
//! keep their source; a shim's error keeps the kind its status carried.

use skiff_errdefs::{Kind, Kinded, Remote};
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
    /// A system call failed, with what was being done.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// Something failed that is nobody's input: a command skiffd ran, an encoding.
    #[error("{0}")]
    Internal(String),
    #[error("metadata database: {0}")]
    Db(#[from] rusqlite::Error),
    /// What a shim answered instead of a reply, with the kind its status carried.
    #[error(transparent)]
    Shim(#[from] Remote),
}

pub type Result<T> = std::result::Result<T, Error>;

/// An I/O error with what was being done.
pub fn io(what: impl fmt::Display, source: std::io::Error) -> Error {
    Error::Io {
        what: what.to_string(),
        source,
    }
}

/// A failed system call through nix, with what was being done.
pub fn sys(what: impl fmt::Display, errno: nix::errno::Errno) -> Error {
    io(what, std::io::Error::from(errno))
}

impl Kinded for Error {
    fn kind(&self) -> Kind {
        match self {
            Error::NotFound(_) => Kind::NotFound,
            Error::AlreadyExists(_) => Kind::AlreadyExists,
            Error::InvalidArgument(_) | Error::Corrupt(_) => Kind::InvalidArgument,
            Error::LimitExceeded(_) => Kind::ResourceExhausted,
            Error::FailedPrecondition(_) => Kind::FailedPrecondition,
            Error::Unavailable(_) => Kind::Unavailable,
            Error::Unauthenticated(_) => Kind::Unauthenticated,
            Error::Cancelled(_) => Kind::Cancelled,
            Error::Io { .. } | Error::Internal(_) | Error::Db(_) => Kind::Internal,
            Error::Shim(remote) => remote.kind,
        }
    }
}

impl From<Error> for ttrpc::Error {
    fn from(e: Error) -> ttrpc::Error {
        ttrpc::Error::RpcStatus(e.status())
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
