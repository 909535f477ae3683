//! The server side of the Raft transport: the `dbadger.v1.Raft` service, handing RPCs to the
//! local `openraft::Raft`.

use std::fmt;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use dbadger_core::raft_storage::RaftStateMachineStore;
use dbadger_core::raft_types::RaftTypes;
use dbadger_core::storage::{SnapshotData, SnapshotSink, StateMachineStore};
use dbadger_proto::v1;
use futures_util::future::{BoxFuture, Shared};
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt};
use openraft::async_runtime::watch::WatchReceiver;
use openraft::raft::AppendEntriesRequest;
use openraft::{AsyncRuntime, Raft, Snapshot};
use tonic::{Request, Response, Status, Streaming};

use crate::WireError;
use crate::convert::raft as wire;
use crate::convert::raft_rules::{self, check_snapshot};
use crate::fence::Fence;
use crate::forward::{ForwardHandler, serve_forward};

/// The `dbadger.v1.Raft` service of one node.
pub struct RaftService<RT: AsyncRuntime, S: StateMachineStore> {
    raft: Raft<RaftTypes<RT>, RaftStateMachineStore<S>>,
    store: Arc<S>,
    forwarded: Arc<dyn ForwardHandler>,
    closing: Shared<BoxFuture<'static, ()>>,
    max_snapshot_bytes: u64,
    fence: Option<Arc<Fence>>,
}

/// The largest snapshot a [`RaftService`] accepts unless told otherwise: 64 GiB, the default
/// store maximum.
pub const DEFAULT_MAX_SNAPSHOT_BYTES: u64 = 64 << 30;

impl<RT: AsyncRuntime, S: StateMachineStore> RaftService<RT, S> {
    /// Serves `raft`, receiving snapshots into `store` (the store behind its state machine) and
    /// handing requests forwarded by followers to `forwarded`.
    ///
    /// When `closing` completes, the append streams leaders hold open end, and new ones end at
    /// once. A leader keeps its stream open for as long as it leads, so a server shutting down
    /// gracefully must fire `closing` first, or it waits for those streams indefinitely.
    pub fn new(
        raft: Raft<RaftTypes<RT>, RaftStateMachineStore<S>>,
        store: Arc<S>,
        forwarded: Arc<dyn ForwardHandler>,
        closing: impl Future<Output = ()> + Send + 'static,
    ) -> RaftService<RT, S> {
        RaftService {
            raft,
            store,
            forwarded,
            closing: closing.boxed().shared(),
            max_snapshot_bytes: DEFAULT_MAX_SNAPSHOT_BYTES,
            fence: None,
        }
    }

    /// The same service refusing Raft RPCs from another cluster or for another node (see
    /// [`crate::fence`]).
    pub fn with_fence(self, fence: Arc<Fence>) -> RaftService<RT, S> {
        RaftService {
            fence: Some(fence),
            ..self
        }
    }

    /// Refuses an RPC its fencing headers say is not for this node.
    fn check_fence<T>(&self, request: &Request<T>) -> Result<(), Status> {
        match &self.fence {
            Some(fence) => fence.check(request.metadata()),
            None => Ok(()),
        }
    }

    /// The same service refusing snapshots larger than `max_snapshot_bytes` (a node uses its
    /// store's maximum: a larger snapshot could never be installed).
    pub fn with_max_snapshot_bytes(self, max_snapshot_bytes: u64) -> RaftService<RT, S> {
        RaftService {
            max_snapshot_bytes,
            ..self
        }
    }

    fn check_append(&self, request: &AppendEntriesRequest<RaftTypes<RT>>) -> Result<(), Status> {
        check_append(&self.raft, request).map_err(Status::from)
    }
}

/// Checks a peer's append-entries request against the protocol's rules and this node's
/// committed log id (see [`crate::convert::raft_rules`]).
fn check_append<RT: AsyncRuntime, S: StateMachineStore>(
    raft: &Raft<RaftTypes<RT>, RaftStateMachineStore<S>>,
    request: &AppendEntriesRequest<RaftTypes<RT>>,
) -> Result<(), WireError> {
    let committed = raft.metrics().borrow_watched().local_committed;
    raft_rules::check_append(
        &request.vote,
        request.prev_log_id.as_ref(),
        &request.entries,
        request.leader_commit.as_ref(),
        committed.as_ref(),
    )
}

impl<RT: AsyncRuntime, S: StateMachineStore> fmt::Debug for RaftService<RT, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RaftService")
    }
}

/// The local Raft stopped: the peer should treat this node as unavailable.
fn stopped(error: impl fmt::Display) -> Status {
    Status::unavailable(format!("raft node stopped: {error}"))
}

#[tonic::async_trait]
impl<RT, S> v1::raft_server::Raft for RaftService<RT, S>
where
    RT: AsyncRuntime,
    S: StateMachineStore,
{
    async fn forward(
        &self,
        request: Request<v1::ForwardRequest>,
    ) -> Result<Response<v1::ForwardResponse>, Status> {
        if let Some(fence) = &self.fence {
            fence.check_cluster(request.metadata())?;
        }
        serve_forward(&*self.forwarded, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn append_entries(
        &self,
        request: Request<v1::AppendEntriesRequest>,
    ) -> Result<Response<v1::AppendEntriesResponse>, Status> {
        self.check_fence(&request)?;
        let rpc = wire::append_request_from_wire::<RT>(request.into_inner())?;
        self.check_append(&rpc)?;
        let response = self.raft.append_entries(rpc).await.map_err(stopped)?;
        Ok(Response::new(wire::append_response_to_wire(&response)))
    }

    type StreamAppendStream = BoxStream<'static, Result<v1::StreamAppendResponse, Status>>;

    /// Hands the leader's requests to openraft's pipelined append as they arrive and returns
    /// its answers in order. A request that does not convert ends the input; the answers to the
    /// requests before it are sent, then the stream ends with that request's error.
    async fn stream_append(
        &self,
        request: Request<Streaming<v1::AppendEntriesRequest>>,
    ) -> Result<Response<Self::StreamAppendStream>, Status> {
        self.check_fence(&request)?;
        let malformed: Arc<Mutex<Option<Status>>> = Arc::default();
        let checker = self.raft.clone();
        let input = futures_util::stream::unfold(
            (request.into_inner(), Arc::clone(&malformed)),
            move |(mut incoming, malformed)| {
                let checker = checker.clone();
                async move {
                    // A broken connection just ends the input: nobody is left to tell.
                    let message = incoming.message().await.ok()??;
                    match wire::append_request_from_wire::<RT>(message)
                        .and_then(|request| check_append(&checker, &request).map(|()| request))
                    {
                        Ok(request) => Some((request, (incoming, malformed))),
                        Err(error) => {
                            *malformed.lock().unwrap_or_else(PoisonError::into_inner) =
                                Some(error.into());
                            None
                        }
                    }
                }
            },
        );
        let answers = self.raft.stream_append(input).map(|answer| match answer {
            Ok(result) => Ok(wire::stream_append_result_to_wire::<RT>(&result)),
            Err(fatal) => Err(stopped(fatal)),
        });
        // openraft's answer stream ends after the input has ended, so the error (if any) is
        // in place when it is read.
        let reason = futures_util::stream::once(async move {
            malformed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
        })
        .filter_map(|reason| async move { reason.map(Err) });
        Ok(Response::new(
            answers
                .chain(reason)
                .take_until(self.closing.clone())
                .boxed(),
        ))
    }

    async fn vote(
        &self,
        request: Request<v1::VoteRequest>,
    ) -> Result<Response<v1::VoteResponse>, Status> {
        self.check_fence(&request)?;
        let rpc = wire::vote_request_from_wire::<RT>(request.into_inner())?;
        let response = self.raft.vote(rpc).await.map_err(stopped)?;
        Ok(Response::new(wire::vote_response_to_wire(&response)))
    }

    async fn pre_vote(
        &self,
        request: Request<v1::VoteRequest>,
    ) -> Result<Response<v1::VoteResponse>, Status> {
        self.check_fence(&request)?;
        let rpc = wire::vote_request_from_wire::<RT>(request.into_inner())?;
        let response = self.raft.pre_vote(rpc).await.map_err(stopped)?;
        Ok(Response::new(wire::vote_response_to_wire(&response)))
    }

    /// Receives a header and data chunks into a new snapshot file, checks its size, then
    /// installs it (the install verifies the checksum before anything changes).
    async fn install_snapshot(
        &self,
        request: Request<Streaming<v1::SnapshotChunk>>,
    ) -> Result<Response<v1::InstallSnapshotResponse>, Status> {
        self.check_fence(&request)?;
        let mut chunks = request.into_inner();
        let header = match chunks.message().await?.and_then(|chunk| chunk.chunk) {
            Some(v1::snapshot_chunk::Chunk::Header(header)) => header,
            _ => {
                return Err(
                    WireError::Protocol("a snapshot stream must start with its header").into(),
                );
            }
        };
        let expected_size = header.size;
        let (vote, meta) = wire::snapshot_header_from_wire(header)?;
        let (local_vote, committed) = {
            let metrics = self.raft.metrics();
            let metrics = metrics.borrow_watched();
            (metrics.vote, metrics.local_committed)
        };
        // A stale leader learns of the newer vote at once; its data is never read or stored.
        if vote.leader_id.term < local_vote.leader_id.term {
            return Ok(Response::new(v1::InstallSnapshotResponse {
                vote: Some(wire::vote_to_wire(&local_vote)),
            }));
        }
        check_snapshot(
            &vote,
            &meta,
            expected_size,
            self.max_snapshot_bytes,
            committed.as_ref(),
        )?;
        let mut sink = self
            .store
            .create_snapshot(&meta)
            .map_err(|error| Status::internal(format!("cannot create snapshot file: {error}")))?;
        let mut received = 0u64;
        while let Some(chunk) = chunks.message().await? {
            match chunk.chunk {
                Some(v1::snapshot_chunk::Chunk::Data(data)) => {
                    received += data.len() as u64;
                    if received > expected_size {
                        return Err(
                            WireError::Protocol("snapshot longer than its header says").into()
                        );
                    }
                    sink.write_all(&data).map_err(|error| {
                        Status::internal(format!("cannot write snapshot: {error}"))
                    })?;
                }
                _ => {
                    return Err(WireError::Protocol(
                        "a snapshot stream carries one header, then data",
                    )
                    .into());
                }
            }
        }
        if received != expected_size {
            return Err(WireError::Protocol("snapshot shorter than its header says").into());
        }
        let snapshot = sink
            .finish()
            .map_err(|error| Status::internal(format!("cannot store snapshot: {error}")))?;
        debug_assert_eq!(snapshot.size_bytes(), expected_size);
        let response = self
            .raft
            .install_full_snapshot(vote, Snapshot { meta, snapshot })
            .await
            .map_err(stopped)?;
        Ok(Response::new(v1::InstallSnapshotResponse {
            vote: Some(wire::vote_to_wire(&response.vote)),
        }))
    }

    async fn transfer_leader(
        &self,
        request: Request<v1::TransferLeaderRequest>,
    ) -> Result<Response<v1::TransferLeaderResponse>, Status> {
        self.check_fence(&request)?;
        let rpc = wire::transfer_request_from_wire::<RT>(request.into_inner())?;
        let response = self
            .raft
            .handle_transfer_leader(rpc)
            .await
            .map_err(stopped)?;
        Ok(Response::new(wire::transfer_response_to_wire::<RT>(
            &response,
        )))
    }
}
