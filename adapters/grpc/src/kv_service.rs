//! The `dbadger.v1.Kv` service: client reads and writes, answered by a [`KvHandler`] (the
//! node), with errors mapped to status codes at this boundary.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use dbadger_core::{Command, Query, ReadPreference, RequestError, Response};
use dbadger_proto::v1;
use futures_util::future::BoxFuture;
use tonic::{Request, Status};

use crate::convert::kv as wire;
use crate::status::to_status;

/// What serves client requests: the local node (which validates, then answers or forwards).
pub trait KvHandler: Send + Sync + 'static {
    /// Runs a write within `timeout` (the node's default when `None`).
    fn write(
        &self,
        command: Command,
        timeout: Option<Duration>,
    ) -> BoxFuture<'_, Result<Response, RequestError>>;
    /// Answers a read within `timeout` (the node's default when `None`).
    fn read(
        &self,
        query: Query,
        preference: ReadPreference,
        timeout: Option<Duration>,
    ) -> BoxFuture<'_, Result<Response, RequestError>>;
}

/// The Kv service over a handler.
pub struct KvService {
    handler: Arc<dyn KvHandler>,
}

impl KvService {
    /// Serves client requests with `handler`.
    pub fn new(handler: Arc<dyn KvHandler>) -> KvService {
        KvService { handler }
    }

    async fn write<T>(
        &self,
        command: Result<Command, RequestError>,
        timeout: Option<Duration>,
        reply: impl FnOnce(Response) -> Result<T, RequestError>,
    ) -> Result<tonic::Response<T>, Status> {
        let result = match command {
            Ok(command) => self.handler.write(command, timeout).await.and_then(reply),
            Err(error) => Err(error),
        };
        result
            .map(tonic::Response::new)
            .map_err(|error| to_status(&error))
    }

    async fn read<T>(
        &self,
        query: Query,
        preference: i32,
        timeout: Option<Duration>,
        reply: impl FnOnce(Response) -> Result<T, RequestError>,
    ) -> Result<tonic::Response<T>, Status> {
        let preference = wire::read_preference(preference)?;
        self.handler
            .read(query, preference, timeout)
            .await
            .and_then(reply)
            .map(tonic::Response::new)
            .map_err(|error| to_status(&error))
    }
}

impl fmt::Debug for KvService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KvService")
    }
}

/// The client's deadline, from the `grpc-timeout` header, if it sent one.
fn client_timeout<T>(request: &Request<T>) -> Option<Duration> {
    let header = request.metadata().get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = header.split_at(header.len().checked_sub(1)?);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

type Reply<T> = Result<tonic::Response<T>, Status>;

#[tonic::async_trait]
impl v1::kv_server::Kv for KvService {
    async fn get(&self, request: Request<v1::GetRequest>) -> Reply<v1::GetResponse> {
        let timeout = client_timeout(&request);
        let request = request.into_inner();
        self.read(
            Query::Get { key: request.key },
            request.read_preference,
            timeout,
            wire::get_response,
        )
        .await
    }

    async fn get_many(&self, request: Request<v1::GetManyRequest>) -> Reply<v1::GetManyResponse> {
        let timeout = client_timeout(&request);
        let request = request.into_inner();
        let query = Query::GetMany { keys: request.keys };
        self.read(
            query,
            request.read_preference,
            timeout,
            wire::get_many_response,
        )
        .await
    }

    async fn get_prefix(&self, request: Request<v1::GetPrefixRequest>) -> Reply<v1::RangeResponse> {
        let timeout = client_timeout(&request);
        let request = request.into_inner();
        let query = Query::GetPrefix {
            prefix: request.prefix,
        };
        self.read(
            query,
            request.read_preference,
            timeout,
            wire::range_response,
        )
        .await
    }

    async fn get_range(&self, request: Request<v1::GetRangeRequest>) -> Reply<v1::RangeResponse> {
        let timeout = client_timeout(&request);
        let request = request.into_inner();
        let query = Query::GetRange {
            min: request.min,
            max: request.max,
            count: request.count,
        };
        self.read(
            query,
            request.read_preference,
            timeout,
            wire::range_response,
        )
        .await
    }

    async fn set(&self, request: Request<v1::SetRequest>) -> Reply<v1::WriteResponse> {
        let timeout = client_timeout(&request);
        let request = request.into_inner();
        let command = Command::Set {
            key: request.key,
            value: request.value,
        };
        self.write(Ok(command), timeout, wire::write_response).await
    }

    async fn set_many(&self, request: Request<v1::SetManyRequest>) -> Reply<v1::WriteResponse> {
        let timeout = client_timeout(&request);
        self.write(
            wire::set_many(request.into_inner()),
            timeout,
            wire::write_response,
        )
        .await
    }

    async fn delete(&self, request: Request<v1::DeleteRequest>) -> Reply<v1::DeleteResponse> {
        let timeout = client_timeout(&request);
        let command = Command::Delete {
            key: request.into_inner().key,
        };
        self.write(Ok(command), timeout, wire::delete_response)
            .await
    }

    async fn delete_many(
        &self,
        request: Request<v1::DeleteManyRequest>,
    ) -> Reply<v1::DeleteResponse> {
        let timeout = client_timeout(&request);
        let command = Command::DeleteMany {
            keys: request.into_inner().keys,
        };
        self.write(Ok(command), timeout, wire::delete_response)
            .await
    }

    async fn delete_prefix(
        &self,
        request: Request<v1::DeletePrefixRequest>,
    ) -> Reply<v1::DeleteResponse> {
        let timeout = client_timeout(&request);
        let command = Command::DeletePrefix {
            prefix: request.into_inner().prefix,
        };
        self.write(Ok(command), timeout, wire::delete_response)
            .await
    }

    async fn delete_range(
        &self,
        request: Request<v1::DeleteRangeRequest>,
    ) -> Reply<v1::DeleteRangeResponse> {
        let timeout = client_timeout(&request);
        let request = request.into_inner();
        let command = Command::DeleteRange {
            min: request.min,
            max: request.max,
        };
        self.write(Ok(command), timeout, wire::delete_range_response)
            .await
    }

    async fn delete_all(
        &self,
        request: Request<v1::DeleteAllRequest>,
    ) -> Reply<v1::DeleteResponse> {
        let timeout = client_timeout(&request);
        self.write(Ok(Command::DeleteAll), timeout, wire::delete_response)
            .await
    }

    async fn compare_and_set(
        &self,
        request: Request<v1::CompareAndSetRequest>,
    ) -> Reply<v1::CompareAndSetResponse> {
        let timeout = client_timeout(&request);
        let command = wire::compare_and_set(request.into_inner())?;
        self.write(Ok(command), timeout, wire::compare_and_set_response)
            .await
    }
}
