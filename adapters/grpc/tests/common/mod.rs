//! Shared by the transport tests.

use dbadger_core::{Command, Query, RequestError, Response};
use dbadger_grpc::ForwardHandler;
use futures_util::future::BoxFuture;

/// The transport tests exercise replication only; forwarded requests are refused.
pub(crate) struct NotForwarding;

impl ForwardHandler for NotForwarding {
    fn write(&self, _: Command) -> BoxFuture<'_, Result<Response, RequestError>> {
        Box::pin(async { Err(RequestError::ShuttingDown) })
    }

    fn linearizable_read(&self, _: Query) -> BoxFuture<'_, Result<Response, RequestError>> {
        Box::pin(async { Err(RequestError::ShuttingDown) })
    }

    fn add_member(&self, _: u64, _: String, _: bool) -> BoxFuture<'_, Result<(), RequestError>> {
        Box::pin(async { Err(RequestError::ShuttingDown) })
    }

    fn remove_member(&self, _: u64) -> BoxFuture<'_, Result<(), RequestError>> {
        Box::pin(async { Err(RequestError::ShuttingDown) })
    }
}
