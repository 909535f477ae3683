//! [`Failure`]: why a Raft RPC to a peer failed, before it is shaped into the error type
//! openraft expects of the call (shared by the unary calls and the append pipeline).

use dbadger_core::raft_types::RaftTypes;
use openraft::AsyncRuntime;
use openraft::errors::{NetworkError, RPCError, StreamingError, Unreachable};

type Types<RT> = RaftTypes<RT>;

/// Why an RPC failed, before it is shaped into the error type the caller needs.
#[derive(Clone, Debug)]
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
                Failure::Unreachable(describe(status))
            }
            _ => Failure::Network(describe(status)),
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

/// A short, human account of a failed call: the status message and, when the failure came
/// from below gRPC (a refused connection, a TLS error), its innermost cause.
pub(crate) fn describe(status: &tonic::Status) -> String {
    let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(status);
    let mut innermost = None;
    while let Some(error) = cause {
        innermost = Some(error);
        cause = error.source();
    }
    match innermost {
        Some(root) if !status.message().contains(&root.to_string()) => {
            format!("{}: {root}", status.message())
        }
        _ => status.message().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_status_is_its_message() {
        assert_eq!(
            describe(&tonic::Status::unavailable("node is stopping")),
            "node is stopping"
        );
    }

    #[test]
    fn a_transport_failure_names_its_root_cause() {
        let refused =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let mut status = tonic::Status::unavailable("tcp connect error");
        status.set_source(std::sync::Arc::new(refused));
        assert_eq!(describe(&status), "tcp connect error: connection refused");
    }
}
