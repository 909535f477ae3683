//! Request bodies that are not valid protobuf are the client's mistake. tonic's protobuf codec
//! reports them as `INTERNAL` (as the gRPC status-code guide has it for a message that fails to
//! parse), without a typed detail; dbadger's contract says `INTERNAL` means a bug on the node.
//! [`MalformedRequestLayer`] rewrites exactly that answer into `INVALID_ARGUMENT` with the
//! `MALFORMED_REQUEST` detail, before it leaves the server. Every other response passes
//! untouched.
//!
//! tonic answers a request it could not decode without calling the service, with a
//! headers-only response that carries the `Status` in its extensions: that is what the layer
//! looks for. (Real sockets only: the simulated transport passes messages as objects and never
//! decodes bytes.)

use std::task::{Context, Poll};

use dbadger_core::{InvalidArgument, RequestError};
use futures_util::TryFutureExt;
use futures_util::future::MapOk;
use tonic::codegen::{Service, http};
use tonic::{Code, Status};
use tower_layer::Layer;

use crate::status::to_status;

/// How tonic's protobuf codec starts the message of a decode failure.
const DECODE_FAILURE_PREFIX: &str = "failed to decode Protobuf message";

/// The layer for a tonic server: see the module documentation.
#[derive(Clone, Copy, Debug, Default)]
pub struct MalformedRequestLayer;

impl<S> Layer<S> for MalformedRequestLayer {
    type Service = MalformedRequest<S>;

    fn layer(&self, inner: S) -> MalformedRequest<S> {
        MalformedRequest { inner }
    }
}

/// A service whose decode failures are answered as `INVALID_ARGUMENT`.
#[derive(Clone, Debug)]
pub struct MalformedRequest<S> {
    inner: S,
}

impl<S, Request, Body> Service<Request> for MalformedRequest<S>
where
    S: Service<Request, Response = http::Response<Body>>,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = MapOk<S::Future, fn(http::Response<Body>) -> http::Response<Body>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        self.inner.call(request).map_ok(retype_decode_failure)
    }
}

/// The answer with a decode failure's status replaced by `INVALID_ARGUMENT`.
fn retype_decode_failure<Body>(mut response: http::Response<Body>) -> http::Response<Body> {
    let Some(reason) = response
        .extensions()
        .get::<Status>()
        .filter(|status| status.code() == Code::Internal)
        .and_then(|status| status.message().strip_prefix(DECODE_FAILURE_PREFIX))
        .map(|rest| match rest.trim_start_matches(':').trim() {
            "" => "the body is not a valid protobuf message".to_owned(),
            what => format!("the body is not a valid protobuf message ({what})"),
        })
    else {
        return response;
    };
    let typed = to_status(&RequestError::InvalidArgument(InvalidArgument::Malformed {
        reason,
    }));
    let headers = response.headers_mut();
    for name in [
        Status::GRPC_STATUS,
        Status::GRPC_MESSAGE,
        Status::GRPC_STATUS_DETAILS,
    ] {
        headers.remove(name);
    }
    if typed.add_header(headers).is_ok() {
        response.extensions_mut().insert(typed);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: Status) -> http::Response<()> {
        retype_decode_failure(status.into_http::<()>())
    }

    fn code(response: &http::Response<()>) -> Option<&str> {
        response
            .headers()
            .get(Status::GRPC_STATUS)
            .and_then(|value| value.to_str().ok())
    }

    /// A decode failure becomes INVALID_ARGUMENT (3) with a typed detail; any other status,
    /// INTERNAL included, is left as it was.
    #[test]
    fn only_decode_failures_are_retyped() {
        let retyped = answer(Status::internal(
            "failed to decode Protobuf message: SetRequest.key: buffer underflow",
        ));
        assert_eq!(code(&retyped), Some("3"));
        assert!(retyped.headers().contains_key(Status::GRPC_STATUS_DETAILS));
        let message = retyped
            .extensions()
            .get::<Status>()
            .map(|status| status.message().to_owned());
        assert_eq!(
            message.as_deref(),
            Some(
                "malformed request: the body is not a valid protobuf message \
                 (SetRequest.key: buffer underflow)"
            )
        );
        assert_eq!(code(&answer(Status::internal("a bug"))), Some("13"));
        assert_eq!(code(&answer(Status::unavailable("no leader"))), Some("14"));
    }
}
