//! Errors of bytes arriving from the network, and their gRPC status.

use dbadger_core::{DecodeError, InvalidArgument, RequestError};

/// A wire message that cannot be turned into a dbadger value. The peer sent something
/// malformed; the request is refused with `INVALID_ARGUMENT` and nothing changes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// A field the message must carry is absent.
    #[error("missing field {0}")]
    MissingField(&'static str),
    /// Embedded bytes (a log entry, a membership) do not decode.
    #[error("malformed {what}: {source}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// Why it failed.
        source: DecodeError,
    },
    /// A message arrived out of the protocol's order (for example snapshot data before its
    /// header).
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    /// A message breaks a rule of the Raft protocol (see [`crate::convert::raft_rules`]).
    #[error("protocol violation: {0}")]
    Rule(String),
}

/// The request error a malformed message stands for: the sender's mistake, not applied.
impl From<WireError> for RequestError {
    fn from(error: WireError) -> RequestError {
        RequestError::InvalidArgument(InvalidArgument::Malformed {
            reason: error.to_string(),
        })
    }
}

/// `INVALID_ARGUMENT` with the `MALFORMED_REQUEST` detail.
impl From<WireError> for tonic::Status {
    fn from(error: WireError) -> tonic::Status {
        crate::status::to_status(&RequestError::from(error))
    }
}
