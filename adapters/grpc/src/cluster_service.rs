//! The `dbadger.v1.Cluster` service: membership and status, answered by a [`ClusterHandler`].

use std::fmt;
use std::sync::Arc;

use dbadger_core::RequestError;
use dbadger_core::raft_types::NodeId;
use dbadger_proto::v1;
use futures_util::future::BoxFuture;
use tonic::{Request, Response, Status};

use crate::status::to_status;

/// What serves cluster administration: the local node (forwarding to the leader as needed).
pub trait ClusterHandler: Send + Sync + 'static {
    /// Adds a node (as learner, then voter unless `learner_only`).
    fn add_peer(
        &self,
        id: NodeId,
        addr: String,
        learner_only: bool,
    ) -> BoxFuture<'_, Result<(), RequestError>>;
    /// Removes a node.
    fn remove_peer(&self, id: NodeId) -> BoxFuture<'_, Result<(), RequestError>>;
    /// This node's view of the cluster.
    fn status(&self) -> v1::StatusResponse;
}

/// The Cluster service over a handler.
pub struct ClusterService {
    handler: Arc<dyn ClusterHandler>,
}

impl ClusterService {
    /// Serves cluster administration with `handler`.
    pub fn new(handler: Arc<dyn ClusterHandler>) -> ClusterService {
        ClusterService { handler }
    }
}

impl fmt::Debug for ClusterService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterService")
    }
}

#[tonic::async_trait]
impl v1::cluster_server::Cluster for ClusterService {
    async fn add_peer(
        &self,
        request: Request<v1::AddPeerRequest>,
    ) -> Result<Response<v1::AddPeerResponse>, Status> {
        let request = request.into_inner();
        if request.id == 0 || request.addr.is_empty() {
            let missing = if request.id == 0 { "id" } else { "addr" };
            return Err(crate::WireError::MissingField(missing).into());
        }
        self.handler
            .add_peer(request.id, request.addr, request.learner_only)
            .await
            .map(|()| Response::new(v1::AddPeerResponse {}))
            .map_err(|error| to_status(&error))
    }

    async fn remove_peer(
        &self,
        request: Request<v1::RemovePeerRequest>,
    ) -> Result<Response<v1::RemovePeerResponse>, Status> {
        self.handler
            .remove_peer(request.into_inner().id)
            .await
            .map(|()| Response::new(v1::RemovePeerResponse {}))
            .map_err(|error| to_status(&error))
    }

    async fn status(
        &self,
        _request: Request<v1::StatusRequest>,
    ) -> Result<Response<v1::StatusResponse>, Status> {
        Ok(Response::new(self.handler.status()))
    }

    async fn snapshot(
        &self,
        _request: Request<v1::SnapshotRequest>,
    ) -> Result<Response<v1::SnapshotResponse>, Status> {
        Err(Status::unimplemented(
            "on-demand snapshots arrive with the snapshot/restore work",
        ))
    }

    async fn restore(
        &self,
        _request: Request<v1::RestoreRequest>,
    ) -> Result<Response<v1::RestoreResponse>, Status> {
        Err(Status::unimplemented(
            "restore arrives with the snapshot/restore work",
        ))
    }
}
