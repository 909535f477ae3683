//! [`Failure`]: why a Raft RPC to a peer failed, before it is shaped into the error type
//! openraft expects of the call (shared by the unary calls and the append pipeline).

use dbadger_core::raft_types::RaftTypes;
use openraft::AsyncRuntime;
use openraft::errors::{NetworkError, RPCError, StreamingError, Unreachable};

type Types<RT> = RaftTypes<RT>;

/// Why an RPC failed, before it is shaped into the error type the caller needs.
pub(crate) enum Failure {
    /// The peer could not be reached (connection refused, bad address, timed out): openraft
    /// backs off.
    Unreachable(String),
    /// The peer answered with an error or garbage.
    Network(String),
}

impl Failure {
    pub(crate) fn from_status(status: &tonic::Status) -> Failure {
        match status.code() {
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
                Failure::Unreachable(status.to_string())
            }
            _ => Failure::Network(status.to_string()),
        }
    }

    pub(crate) fn into_rpc<RT: AsyncRuntime>(self) -> RPCError<Types<RT>> {
        match self {
            Failure::Unreachable(message) => {
                RPCError::Unreachable(Unreachable::from_string(message))
            }
            Failure::Network(message) => RPCError::Network(NetworkError::from_string(message)),
        }
    }

    pub(crate) fn into_streaming<RT: AsyncRuntime>(self) -> StreamingError<Types<RT>> {
        match self {
            Failure::Unreachable(message) => {
                StreamingError::Unreachable(Unreachable::from_string(message))
            }
            Failure::Network(message) => {
                StreamingError::Network(NetworkError::from_string(message))
            }
        }
    }
}
