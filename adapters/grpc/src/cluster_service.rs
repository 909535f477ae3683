//! The `dbadger.v1.Cluster` service: membership and status, answered by a [`ClusterHandler`].

use std::fmt;
use std::io::Read;
use std::sync::Arc;

use dbadger_core::RequestError;
use dbadger_core::raft_types::NodeId;
use dbadger_proto::v1;
use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream};
use tonic::{Request, Response, Status, Streaming};

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
    /// Makes learner `id` a voter once it has caught up.
    fn promote_peer(&self, id: NodeId) -> BoxFuture<'_, Result<(), RequestError>>;
    /// Takes voter `id`'s vote away; it stays as a learner.
    fn demote_peer(&self, id: NodeId) -> BoxFuture<'_, Result<(), RequestError>>;
    /// Hands the leadership to voter `to` (`None`: the best placed voter).
    fn transfer_leader(&self, to: Option<NodeId>) -> BoxFuture<'_, Result<(), RequestError>>;
    /// This node's view of the cluster.
    fn status(&self) -> v1::StatusResponse;
    /// Takes a snapshot of what this node has applied; returns it once durable.
    fn snapshot(&self) -> BoxFuture<'_, Result<v1::SnapshotInfo, RequestError>>;
    /// The snapshots this node keeps, newest first.
    fn snapshots(&self) -> Result<Vec<v1::SnapshotInfo>, RequestError>;
    /// Opens snapshot `id` for reading.
    fn open_snapshot(&self, id: &str) -> Result<(v1::SnapshotInfo, SnapshotBytes), RequestError>;
    /// Replaces the cluster's state with `snapshot`; answers the restore's revision and how
    /// many pairs the key space holds.
    fn restore(&self, snapshot: RestoreSource) -> BoxFuture<'_, Result<(u64, u64), RequestError>>;
}

/// What a restore request names: a snapshot the node keeps, or an uploaded file.
#[derive(Clone, Debug)]
pub enum RestoreSource {
    /// A snapshot id ([`ClusterHandler::snapshots`]).
    Snapshot(String),
    /// The bytes of a snapshot file.
    Upload(Vec<u8>),
}

/// The largest snapshot file a client may upload for a restore, by default (the node holds
/// it in memory while it restores): 1 GiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: usize = 1 << 30;

/// The bytes of a snapshot file, read in order.
pub type SnapshotBytes = Box<dyn Read + Send>;

/// The size of the pieces a snapshot is streamed in.
const DOWNLOAD_CHUNK_BYTES: usize = 1 << 20;

/// The next piece of a snapshot being streamed: `None` at its end.
fn next_piece(reader: &mut SnapshotBytes) -> Option<Result<Vec<u8>, Status>> {
    let mut piece = Vec::with_capacity(DOWNLOAD_CHUNK_BYTES);
    match reader
        .take(DOWNLOAD_CHUNK_BYTES as u64)
        .read_to_end(&mut piece)
    {
        Ok(0) => None,
        Ok(_) => Some(Ok(piece)),
        Err(error) => Some(Err(Status::internal(format!(
            "reading the snapshot failed: {error}"
        )))),
    }
}

/// The Cluster service over a handler.
pub struct ClusterService {
    handler: Arc<dyn ClusterHandler>,
    max_upload_bytes: usize,
}

impl ClusterService {
    /// Serves cluster administration with `handler`.
    pub fn new(handler: Arc<dyn ClusterHandler>) -> ClusterService {
        ClusterService {
            handler,
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
        }
    }

    /// The same service accepting uploads for a restore of at most `max_upload_bytes`.
    pub fn with_max_upload_bytes(self, max_upload_bytes: usize) -> ClusterService {
        ClusterService {
            max_upload_bytes,
            ..self
        }
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

    async fn promote_peer(
        &self,
        request: Request<v1::PromotePeerRequest>,
    ) -> Result<Response<v1::PromotePeerResponse>, Status> {
        self.handler
            .promote_peer(request.into_inner().id)
            .await
            .map(|()| Response::new(v1::PromotePeerResponse {}))
            .map_err(|error| to_status(&error))
    }

    async fn demote_peer(
        &self,
        request: Request<v1::DemotePeerRequest>,
    ) -> Result<Response<v1::DemotePeerResponse>, Status> {
        self.handler
            .demote_peer(request.into_inner().id)
            .await
            .map(|()| Response::new(v1::DemotePeerResponse {}))
            .map_err(|error| to_status(&error))
    }

    async fn transfer_leadership(
        &self,
        request: Request<v1::TransferLeadershipRequest>,
    ) -> Result<Response<v1::TransferLeadershipResponse>, Status> {
        let to = request.into_inner().to;
        self.handler
            .transfer_leader((to != 0).then_some(to))
            .await
            .map(|()| Response::new(v1::TransferLeadershipResponse {}))
            .map_err(|error| to_status(&error))
    }

    async fn snapshot(
        &self,
        _request: Request<v1::SnapshotRequest>,
    ) -> Result<Response<v1::SnapshotResponse>, Status> {
        let snapshot = self
            .handler
            .snapshot()
            .await
            .map_err(|error| to_status(&error))?;
        Ok(Response::new(v1::SnapshotResponse {
            id: snapshot.id.clone(),
            snapshot: Some(snapshot),
        }))
    }

    async fn list_snapshots(
        &self,
        _request: Request<v1::ListSnapshotsRequest>,
    ) -> Result<Response<v1::ListSnapshotsResponse>, Status> {
        let snapshots = self
            .handler
            .snapshots()
            .map_err(|error| to_status(&error))?;
        Ok(Response::new(v1::ListSnapshotsResponse { snapshots }))
    }

    type DownloadSnapshotStream = BoxStream<'static, Result<v1::SnapshotData, Status>>;

    async fn download_snapshot(
        &self,
        request: Request<v1::DownloadSnapshotRequest>,
    ) -> Result<Response<Self::DownloadSnapshotStream>, Status> {
        let id = request.into_inner().id;
        if id.is_empty() {
            return Err(crate::WireError::MissingField("id").into());
        }
        let (info, reader) = self
            .handler
            .open_snapshot(&id)
            .map_err(|error| to_status(&error))?;
        let pieces = stream::unfold((reader, Some(info)), |(mut reader, mut info)| async move {
            let piece = match next_piece(&mut reader) {
                Some(Ok(data)) => Ok(v1::SnapshotData {
                    snapshot: info.take(),
                    data,
                }),
                Some(Err(status)) => Err(status),
                // An empty file still tells the client what it is.
                None => match info.take() {
                    Some(info) => Ok(v1::SnapshotData {
                        snapshot: Some(info),
                        data: Vec::new(),
                    }),
                    None => return None,
                },
            };
            Some((piece, (reader, info)))
        });
        Ok(Response::new(Box::pin(pieces)))
    }

    async fn restore(
        &self,
        request: Request<Streaming<v1::RestoreRequest>>,
    ) -> Result<Response<v1::RestoreResponse>, Status> {
        let mut messages = request.into_inner();
        let mut upload = Vec::new();
        let mut named = None;
        while let Some(message) = messages.message().await? {
            if !message.id.is_empty() {
                if named.is_some() || !upload.is_empty() {
                    return Err(Status::invalid_argument(
                        "a restore names one snapshot or uploads one file, not both",
                    ));
                }
                named = Some(message.id);
            }
            if upload.len() + message.data.len() > self.max_upload_bytes {
                return Err(Status::resource_exhausted(format!(
                    "the upload exceeds the limit of {} bytes",
                    self.max_upload_bytes
                )));
            }
            upload.extend_from_slice(&message.data);
        }
        let source = match named {
            Some(id) => RestoreSource::Snapshot(id),
            None if upload.is_empty() => return Err(crate::WireError::MissingField("id").into()),
            None => RestoreSource::Upload(upload),
        };
        let (revision, keys) = self
            .handler
            .restore(source)
            .await
            .map_err(|error| to_status(&error))?;
        Ok(Response::new(v1::RestoreResponse { revision, keys }))
    }
}
