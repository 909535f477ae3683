//! [`RequestError`] <-> gRPC status, with a typed `ErrorDetail` in the status details so that
//! clients (and forwarding nodes) recover the exact error.

use dbadger_core::{InvalidArgument, RequestError};
use dbadger_proto::v1::{ErrorCode, ErrorDetail};
use prost::Message;
use tonic::{Code, Status};

/// The status a request error is reported as.
pub fn to_status(error: &RequestError) -> Status {
    let (code, error_code) = match error {
        RequestError::InvalidArgument(invalid) => invalid_argument_codes(invalid),
        RequestError::NotFound => (Code::NotFound, ErrorCode::KeyNotFound),
        RequestError::Unavailable { .. } => (Code::Unavailable, ErrorCode::NoLeader),
        RequestError::Timeout { .. } => (Code::DeadlineExceeded, ErrorCode::Timeout),
        RequestError::StorageFull { .. } => (Code::ResourceExhausted, ErrorCode::StorageFull),
        RequestError::ShuttingDown => (Code::Unavailable, ErrorCode::ShuttingDown),
        RequestError::Internal(_) => (Code::Internal, ErrorCode::InternalError),
        _ => (Code::Internal, ErrorCode::InternalError),
    };
    let (leader_id, leader_addr) = match error {
        RequestError::Unavailable {
            leader: Some((id, addr)),
            ..
        } => (*id, addr.clone()),
        _ => (0, String::new()),
    };
    let detail = ErrorDetail {
        code: error_code as i32,
        message: error.to_string(),
        leader_id,
        leader_addr,
        ..ErrorDetail::default()
    };
    Status::with_details(code, error.to_string(), detail.encode_to_vec().into())
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

/// The request error a status stands for. Statuses from dbadger carry an `ErrorDetail`; any
/// other status (a proxy, a transport failure) is classified by its code alone.
pub fn from_status(status: &Status) -> RequestError {
    let detail = ErrorDetail::decode(status.details()).ok();
    let message = detail
        .as_ref()
        .map_or_else(|| status.message().to_owned(), |d| d.message.clone());
    let code = detail
        .as_ref()
        .and_then(|d| ErrorCode::try_from(d.code).ok())
        .unwrap_or(ErrorCode::Unspecified);
    match code {
        ErrorCode::KeyNotFound => return RequestError::NotFound,
        ErrorCode::StorageFull => return RequestError::StorageFull { max_bytes: 0 },
        ErrorCode::ShuttingDown => return RequestError::ShuttingDown,
        ErrorCode::NoLeader => {
            let leader = detail
                .filter(|d| d.leader_id != 0)
                .map(|d| (d.leader_id, d.leader_addr));
            return RequestError::Unavailable {
                reason: message,
                leader,
            };
        }
        _ => {}
    }
    match status.code() {
        Code::NotFound => RequestError::NotFound,
        Code::Unavailable | Code::Cancelled | Code::Aborted => RequestError::Unavailable {
            reason: message,
            leader: None,
        },
        Code::DeadlineExceeded => RequestError::Timeout { deadline_ms: 0 },
        // Validation happens on the node that receives a request, before it forwards it, so an
        // invalid-argument status from a peer is an internal disagreement (different limits).
        _ => RequestError::Internal(format!("{}: {message}", status.code())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every error class keeps its identity through a status; the leader hint survives.
    #[test]
    fn request_errors_survive_a_status() {
        let unavailable = RequestError::Unavailable {
            reason: "no quorum".into(),
            leader: Some((7, "10.0.0.7:7400".into())),
        };
        for error in [
            RequestError::NotFound,
            unavailable,
            RequestError::ShuttingDown,
            RequestError::Unavailable {
                reason: "no leader".into(),
                leader: None,
            },
        ] {
            let status = to_status(&error);
            let back = from_status(&status);
            match (&error, &back) {
                (
                    RequestError::Unavailable { leader: a, .. },
                    RequestError::Unavailable { leader: b, .. },
                ) => {
                    assert_eq!(a, b);
                }
                _ => assert_eq!(
                    std::mem::discriminant(&error),
                    std::mem::discriminant(&back)
                ),
            }
        }
        assert_eq!(
            to_status(&RequestError::Timeout { deadline_ms: 5 }).code(),
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
            to_status(&RequestError::InvalidArgument(InvalidArgument::EmptyKey)).code(),
            Code::InvalidArgument
        );
        assert_eq!(
            to_status(&RequestError::StorageFull { max_bytes: 1 }).code(),
            Code::ResourceExhausted
        );
    }
}
