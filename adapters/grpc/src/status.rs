//! [`RequestError`] <-> gRPC status, the standard way: the status details hold a
//! `google.rpc.Status` (the gRPC richer error model, through tonic-types) whose details are a
//! `dbadger.v1.ErrorDetail` packed in an `Any` and a standard `google.rpc.ErrorInfo`, so that
//! clients in any language (grpcio-status, grpc-go's `status.Details`) and forwarding nodes
//! recover the exact error and what became of the request.

use dbadger_core::{InvalidArgument, Outcome, RequestError};
use dbadger_proto::v1::{self, ErrorCode, ErrorDetail};
use prost::Message;
use tonic::{Code, Status};
use tonic_types::pb;

/// The `Any` type URL of `dbadger.v1.ErrorDetail`.
pub const ERROR_DETAIL_TYPE_URL: &str = "type.googleapis.com/dbadger.v1.ErrorDetail";

/// The `ErrorInfo` domain of dbadger's errors.
pub const ERROR_DOMAIN: &str = "dbadger.v1";

const ERROR_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.ErrorInfo";

/// The status code and detail code a request error is reported as.
pub fn codes(error: &RequestError) -> (Code, ErrorCode) {
    match error {
        RequestError::InvalidArgument(invalid) => invalid_argument_codes(invalid),
        RequestError::NotFound => (Code::NotFound, ErrorCode::KeyNotFound),
        RequestError::UnknownMember { .. } => (Code::NotFound, ErrorCode::UnknownMember),
        RequestError::Refused { .. } => (Code::FailedPrecondition, ErrorCode::Refused),
        RequestError::UnknownSnapshot { .. } => (Code::NotFound, ErrorCode::SnapshotNotFound),
        RequestError::Unavailable { .. } => (Code::Unavailable, ErrorCode::NoLeader),
        RequestError::Timeout { .. } => (Code::DeadlineExceeded, ErrorCode::Timeout),
        RequestError::StorageFull { .. } => (Code::ResourceExhausted, ErrorCode::StorageFull),
        RequestError::ResponseTooLarge { .. } => {
            (Code::ResourceExhausted, ErrorCode::ResponseTooLarge)
        }
        RequestError::ShuttingDown { .. } => (Code::Unavailable, ErrorCode::ShuttingDown),
        RequestError::Fatal { .. } => (Code::Unavailable, ErrorCode::NodeFailed),
        _ => (Code::Internal, ErrorCode::InternalError),
    }
}

fn wire_outcome(outcome: Outcome) -> v1::Outcome {
    match outcome {
        Outcome::NotApplied => v1::Outcome::NotApplied,
        Outcome::Unknown => v1::Outcome::Unknown,
    }
}

/// The status a request error is reported as.
pub fn to_status(error: &RequestError) -> Status {
    let (code, error_code) = codes(error);
    let (leader_id, leader_addr) = match error {
        RequestError::Unavailable {
            leader: Some((id, addr)),
            ..
        } => (*id, addr.clone()),
        _ => (0, String::new()),
    };
    let outcome = wire_outcome(error.outcome());
    let detail = ErrorDetail {
        code: error_code as i32,
        message: error.reason(),
        leader_id,
        leader_addr,
        outcome: outcome as i32,
        retryable: error.is_retryable(),
    };
    let info = pb::ErrorInfo {
        reason: error_code.as_str_name().to_owned(),
        domain: ERROR_DOMAIN.to_owned(),
        metadata: [
            ("outcome".to_owned(), outcome.as_str_name().to_owned()),
            ("retryable".to_owned(), error.is_retryable().to_string()),
        ]
        .into(),
    };
    let message = error.to_string();
    let rich = pb::Status {
        code: code as i32,
        message: message.clone(),
        details: vec![
            prost_types::Any {
                type_url: ERROR_DETAIL_TYPE_URL.to_owned(),
                value: detail.encode_to_vec(),
            },
            prost_types::Any {
                type_url: ERROR_INFO_TYPE_URL.to_owned(),
                value: info.encode_to_vec(),
            },
        ],
    };
    Status::with_details(code, message, rich.encode_to_vec().into())
}

fn invalid_argument_codes(invalid: &InvalidArgument) -> (Code, ErrorCode) {
    match invalid {
        InvalidArgument::EmptyKey => (Code::InvalidArgument, ErrorCode::EmptyKey),
        InvalidArgument::KeyTooLong { .. } => (Code::InvalidArgument, ErrorCode::KeyTooLong),
        InvalidArgument::ValueTooLarge { .. } => (Code::InvalidArgument, ErrorCode::ValueTooLarge),
        InvalidArgument::LengthMismatch { .. } => {
            (Code::InvalidArgument, ErrorCode::LengthMismatch)
        }
        InvalidArgument::TooManyOperations { .. } => {
            (Code::InvalidArgument, ErrorCode::TooManyOperations)
        }
        InvalidArgument::RequestTooLarge { .. } => {
            (Code::ResourceExhausted, ErrorCode::RequestTooLarge)
        }
        _ => (Code::InvalidArgument, ErrorCode::MalformedRequest),
    }
}

/// The typed detail of a status, if it carries one the standard way.
pub fn error_detail(status: &Status) -> Option<ErrorDetail> {
    let rich = pb::Status::decode(status.details()).ok()?;
    rich.details
        .iter()
        .find(|any| any.type_url == ERROR_DETAIL_TYPE_URL)
        .and_then(|any| ErrorDetail::decode(any.value.as_slice()).ok())
}

fn outcome_of(detail: &ErrorDetail) -> Outcome {
    match v1::Outcome::try_from(detail.outcome) {
        Ok(v1::Outcome::NotApplied) => Outcome::NotApplied,
        _ => Outcome::Unknown,
    }
}

/// The request error a status stands for.
///
/// A status from dbadger carries an `ErrorDetail` and is restored exactly, its outcome
/// included. Any other status did not come from a dbadger node's answer: a connection that
/// broke, a proxy, tonic's own handling. It is classified by its code, and its outcome is
/// unknown (the request may have reached the node before the failure): a transport failure is
/// `Unavailable`, never `Internal`, which means a bug.
pub fn from_status(status: &Status) -> RequestError {
    match error_detail(status) {
        Some(detail) => from_detail(status, detail),
        None => from_transport_status(status),
    }
}

fn from_detail(status: &Status, detail: ErrorDetail) -> RequestError {
    let outcome = outcome_of(&detail);
    let reason = detail.message.clone();
    match ErrorCode::try_from(detail.code).unwrap_or(ErrorCode::Unspecified) {
        ErrorCode::KeyNotFound => RequestError::NotFound,
        ErrorCode::StorageFull => RequestError::StorageFull { max_bytes: 0 },
        ErrorCode::ShuttingDown => RequestError::ShuttingDown { outcome },
        ErrorCode::Timeout => RequestError::Timeout {
            deadline_ms: 0,
            outcome,
        },
        ErrorCode::UnknownMember => RequestError::UnknownMember {
            id: reason
                .strip_prefix("node ")
                .and_then(|rest| rest.split(' ').next())
                .and_then(|id| id.parse().ok())
                .unwrap_or(0),
        },
        ErrorCode::NodeFailed => RequestError::Fatal { reason },
        ErrorCode::Refused => RequestError::Refused { reason },
        ErrorCode::SnapshotNotFound => RequestError::UnknownSnapshot {
            id: reason
                .strip_prefix("no snapshot ")
                .and_then(|rest| rest.strip_suffix(" on this node"))
                .unwrap_or(&reason)
                .to_owned(),
        },
        ErrorCode::ResponseTooLarge => RequestError::ResponseTooLarge { bytes: 0, max: 0 },
        ErrorCode::NoLeader => RequestError::Unavailable {
            reason,
            leader: (detail.leader_id != 0).then_some((detail.leader_id, detail.leader_addr)),
            outcome,
        },
        // The node refused the request as invalid (validation happens where a request
        // arrives, so from a peer this means the two disagree on limits): not applied.
        ErrorCode::EmptyKey => RequestError::InvalidArgument(InvalidArgument::EmptyKey),
        ErrorCode::KeyTooLong
        | ErrorCode::ValueTooLarge
        | ErrorCode::LengthMismatch
        | ErrorCode::TooManyOperations
        | ErrorCode::RequestTooLarge
        | ErrorCode::MalformedRequest => {
            RequestError::InvalidArgument(InvalidArgument::Malformed { reason })
        }
        _ => RequestError::Internal(format!("{}: {reason}", status.code())),
    }
}

fn from_transport_status(status: &Status) -> RequestError {
    let reason = if status.message().is_empty() {
        format!("the connection failed ({})", code_words(status.code()))
    } else {
        format!("the connection failed: {}", status.message())
    };
    match status.code() {
        Code::NotFound => RequestError::NotFound,
        Code::DeadlineExceeded => timed_out(),
        // tonic's client-side timer ends a call as CANCELLED "Timeout expired"; any other
        // cancellation is the connection going away.
        Code::Cancelled if status.message() == CLIENT_TIMER_MESSAGE => timed_out(),
        // The node answered, but does not serve the call (a node of another version).
        Code::Unimplemented => RequestError::Internal(format!(
            "the node does not serve this call: {}",
            status.message()
        )),
        _ => RequestError::unavailable(reason, Outcome::Unknown),
    }
}

/// The message of a call ended by tonic's client-side timeout.
const CLIENT_TIMER_MESSAGE: &str = "Timeout expired";

fn timed_out() -> RequestError {
    RequestError::Timeout {
        deadline_ms: 0,
        outcome: Outcome::Unknown,
    }
}

/// A status code in lower-case words.
fn code_words(code: Code) -> String {
    code.description().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every error class keeps its identity and its outcome through a status; the leader hint
    /// survives; reasons are not doubled.
    #[test]
    fn request_errors_survive_a_status() {
        let unavailable = RequestError::Unavailable {
            reason: "no quorum".into(),
            leader: Some((7, "10.0.0.7:7400".into())),
            outcome: Outcome::Unknown,
        };
        for error in [
            RequestError::NotFound,
            unavailable,
            RequestError::ShuttingDown {
                outcome: Outcome::NotApplied,
            },
            RequestError::unavailable("no leader", Outcome::NotApplied),
            RequestError::Timeout {
                deadline_ms: 0,
                outcome: Outcome::Unknown,
            },
            RequestError::UnknownMember { id: 0 },
            RequestError::UnknownMember { id: 42 },
            RequestError::ResponseTooLarge { bytes: 0, max: 0 },
            RequestError::InvalidArgument(InvalidArgument::EmptyKey),
            RequestError::Fatal {
                reason: "the log append failed".into(),
            },
            RequestError::Refused {
                reason: "node 3 is the last voter".into(),
            },
            RequestError::UnknownSnapshot {
                id: "snapshot-2-1-40".into(),
            },
        ] {
            let status = to_status(&error);
            assert_eq!(from_status(&status), error);
            assert_eq!(status.message(), error.to_string());
        }
        assert_eq!(
            to_status(&RequestError::Timeout {
                deadline_ms: 5,
                outcome: Outcome::Unknown
            })
            .code(),
            Code::DeadlineExceeded
        );
        assert_eq!(
            to_status(&RequestError::InvalidArgument(
                InvalidArgument::RequestTooLarge { bytes: 9, max: 8 }
            ))
            .code(),
            Code::ResourceExhausted
        );
        assert_eq!(
            to_status(&RequestError::StorageFull { max_bytes: 1 }).code(),
            Code::ResourceExhausted
        );
    }

    /// The details are a standard `google.rpc.Status`: the typed detail in an `Any`, and an
    /// `ErrorInfo` that any gRPC library reads, naming the code and the outcome.
    #[test]
    fn details_follow_the_richer_error_model() {
        let status = to_status(&RequestError::unavailable("no leader", Outcome::NotApplied));
        let rich = pb::Status::decode(status.details()).expect("a google.rpc.Status");
        assert_eq!(rich.code, Code::Unavailable as i32);
        let detail = error_detail(&status).expect("typed detail");
        assert_eq!(detail.outcome, v1::Outcome::NotApplied as i32);
        assert!(detail.retryable);
        assert_eq!(detail.message, "no leader");
        let info = tonic_types::StatusExt::get_details_error_info(&status).expect("ErrorInfo");
        assert_eq!(info.reason, "NO_LEADER");
        assert_eq!(info.metadata["outcome"], "NOT_APPLIED");
    }

    /// A status that no dbadger node wrote (a broken connection, tonic's own errors) is a
    /// retryable failure of unknown outcome, never INTERNAL.
    #[test]
    fn transport_failures_are_unavailable_with_unknown_outcome() {
        for status in [
            Status::unknown(""),
            Status::internal("h2 protocol error: connection reset"),
            Status::unavailable("tcp connect error"),
        ] {
            let error = from_status(&status);
            assert!(
                matches!(error, RequestError::Unavailable { .. }),
                "{status:?} -> {error:?}"
            );
            assert_eq!(error.outcome(), Outcome::Unknown);
            assert!(!error.to_string().contains("unavailable: unavailable"));
        }
        let timer = from_status(&Status::cancelled("Timeout expired"));
        assert!(matches!(timer, RequestError::Timeout { .. }));
        let reset = from_status(&Status::cancelled("operation was canceled"));
        assert!(matches!(reset, RequestError::Unavailable { .. }));
        let missing = from_status(&Status::unimplemented("no such method"));
        assert!(matches!(missing, RequestError::Internal(_)));
    }
}
