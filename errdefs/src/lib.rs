//! What went wrong, in one vocabulary for every part of skiff: the shims' errors, skiffd's,
//! and what skiffd's shim client hears back from a shim. A kind travels between them as a
//! ttrpc status code (containerd turns the same codes into its own errdefs), so each kind
//! has exactly one code, and each code one kind: an error crosses a socket and comes out
//! as what it went in as (a shim's UNIMPLEMENTED stays unimplemented in skiffd's answer).

use ttrpc::Code;

/// Why a request was not done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The request is malformed: a bad id or path, options of an unknown type.
    InvalidArgument,
    /// No such thing (container, process, image), or it has ended.
    NotFound,
    /// Something with that name is already there.
    AlreadyExists,
    /// The state forbids it now: exec into a stopped task, an image in use.
    FailedPrecondition,
    /// The request exists but this side does not do it.
    Unimplemented,
    /// Over a limit: no thread for a runtime command, too many parked Waits, an import
    /// limit. Trying again later, or with less, may work.
    ResourceExhausted,
    /// The other side cannot be reached now (a shim that went away, a lost connection).
    Unavailable,
    /// A deadline passed before the answer came.
    DeadlineExceeded,
    /// The caller gave up (a pull cancelled).
    Cancelled,
    /// A peer (a registry) wants a login it did not get, or refused the one it got.
    Unauthenticated,
    /// A failure the caller can do nothing about: a system call, the metadata database.
    Internal,
    /// Nothing more specific is known: an OCI runtime's own failure.
    Unknown,
}

/// Every kind with its code, the one table both directions read.
const CODES: [(Kind, Code); 12] = [
    (Kind::InvalidArgument, Code::INVALID_ARGUMENT),
    (Kind::NotFound, Code::NOT_FOUND),
    (Kind::AlreadyExists, Code::ALREADY_EXISTS),
    (Kind::FailedPrecondition, Code::FAILED_PRECONDITION),
    (Kind::Unimplemented, Code::UNIMPLEMENTED),
    (Kind::ResourceExhausted, Code::RESOURCE_EXHAUSTED),
    (Kind::Unavailable, Code::UNAVAILABLE),
    (Kind::DeadlineExceeded, Code::DEADLINE_EXCEEDED),
    (Kind::Cancelled, Code::CANCELLED),
    (Kind::Unauthenticated, Code::UNAUTHENTICATED),
    (Kind::Internal, Code::INTERNAL),
    (Kind::Unknown, Code::UNKNOWN),
];

impl Kind {
    /// The status code this kind travels as.
    pub fn code(self) -> Code {
        CODES
            .iter()
            .find(|(k, _)| *k == self)
            .map_or(Code::UNKNOWN, |(_, c)| *c)
    }

    /// The kind a status code carries; codes no kind sends (OUT_OF_RANGE, ABORTED,
    /// PERMISSION_DENIED, DATA_LOSS, and OK where an error was expected) are unknown.
    pub fn of_code(code: Code) -> Kind {
        CODES
            .iter()
            .find(|(_, c)| *c == code)
            .map_or(Kind::Unknown, |(k, _)| *k)
    }

    /// The status an answer carries for an error of this kind.
    pub fn status(self, message: impl std::fmt::Display) -> ttrpc::Status {
        ttrpc::get_status(self.code(), message)
    }
}

/// An error that knows its kind: how each part's own error enum plugs into the vocabulary.
pub trait Kinded: std::error::Error {
    fn kind(&self) -> Kind;

    /// The status an answer carries for this error: its kind and its whole message.
    fn status(&self) -> ttrpc::Status {
        self.kind().status(self)
    }
}

/// What a peer answered instead of a reply: the kind its status carried and its message,
/// or the kind of a failure to reach it at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Remote {
    pub kind: Kind,
    pub message: String,
}

impl Kinded for Remote {
    fn kind(&self) -> Kind {
        self.kind
    }
}

impl From<ttrpc::Error> for Remote {
    fn from(e: ttrpc::Error) -> Remote {
        let kind = match &e {
            ttrpc::Error::RpcStatus(s) => {
                return Remote {
                    kind: Kind::of_code(s.code()),
                    message: s.message().to_string(),
                }
            }
            // The socket failed or the peer hung up: it is not there now.
            ttrpc::Error::Socket(_)
            | ttrpc::Error::LocalClosed
            | ttrpc::Error::RemoteClosed
            | ttrpc::Error::Eof => Kind::Unavailable,
            _ => Kind::Unknown,
        };
        Remote {
            kind,
            message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_comes_back_as_itself_through_its_code() {
        for (kind, code) in CODES {
            assert_eq!(kind.code(), code);
            assert_eq!(Kind::of_code(kind.code()), kind);
        }
        let mut codes: Vec<i32> = CODES.iter().map(|(_, c)| *c as i32).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), CODES.len(), "two kinds share a code");
    }

    #[test]
    fn a_peers_status_keeps_its_kind_and_message() {
        let status = Kind::Unimplemented.status("libcontainer does not support checkpoint");
        let remote = Remote::from(ttrpc::Error::RpcStatus(status));
        assert_eq!(remote.kind, Kind::Unimplemented);
        assert_eq!(
            remote.to_string(),
            "libcontainer does not support checkpoint"
        );
        let exhausted = Remote::from(ttrpc::Error::RpcStatus(
            Kind::ResourceExhausted.status("no thread"),
        ));
        assert_eq!(exhausted.kind, Kind::ResourceExhausted);
    }

    #[test]
    fn a_peer_that_is_gone_is_unavailable_and_odd_codes_unknown() {
        assert_eq!(
            Remote::from(ttrpc::Error::Socket("connection refused".into())).kind,
            Kind::Unavailable
        );
        assert_eq!(
            Remote::from(ttrpc::Error::RemoteClosed).kind,
            Kind::Unavailable
        );
        assert_eq!(Kind::of_code(Code::PERMISSION_DENIED), Kind::Unknown);
        assert_eq!(Kind::of_code(Code::OK), Kind::Unknown);
    }
}
