//! The client side of the Raft transport: openraft's network factory and per-peer clients.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use dbadger_core::raft_types::{Node, NodeId, RaftTypes, Vote};
use dbadger_core::storage::SnapshotData;
use dbadger_proto::v1;
use dbadger_proto::v1::raft_client::RaftClient;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, Stream, StreamExt};
use openraft::errors::{RPCError, ReplicationClosed, StreamingError};
use openraft::network::v2::RaftNetworkV2;
use openraft::network::{Backoff, RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, StreamAppendResult,
    TransferLeaderRequest, TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::{AsyncRuntime, Snapshot};
use tonic::transport::Channel;

use crate::PeerTransport;
use crate::append_pipeline::{AnswerItem, PipelineRequests, pipeline};
use crate::fence::Fence;
use crate::peer_link::{PeerLink, PeerOptions};
use crate::rpc_failure::Failure;

use crate::SNAPSHOT_CHUNK_BYTES;
use crate::convert::raft as wire;

type Types<RT> = RaftTypes<RT>;

/// openraft's network factory over gRPC: one link per peer (see [`crate::peer_link`]), which
/// holds its lazily connected channel, replaced after a call could not reach the peer, and
/// its retry state. `D` is the snapshot type of the local
/// state machine, streamed to peers in chunks.
pub struct GrpcNetwork<D> {
    options: PeerOptions,
    transport: PeerTransport,
    /// One entry per peer id this node ever replicated to or asked for a vote: bounded by
    /// the membership's history, not by traffic. Shared with [`PeerAddresses`].
    links: Arc<Mutex<HashMap<NodeId, PeerLink>>>,
    fence: Option<Arc<Fence>>,
    _snapshot: PhantomData<fn() -> D>,
}

impl<D> GrpcNetwork<D> {
    /// The same factory, its clients stamping every RPC with `fence`'s headers (see
    /// [`crate::fence`]).
    pub fn with_fence(self, fence: Arc<Fence>) -> GrpcNetwork<D> {
        GrpcNetwork {
            fence: Some(fence),
            ..self
        }
    }

    /// A factory whose clients reach peers over `transport` as `options` say.
    ///
    /// openraft gives append-entries and heartbeat RPCs the heartbeat interval as their deadline
    /// (tens of milliseconds). A follower that needs longer, because the network is slow or its
    /// disk is busy, would then never be caught up: every append would be cut off and retried.
    /// The floor (`min_rpc_timeout`; the node uses its heartbeat timeout) keeps slow peers
    /// replicating; a peer that cannot answer within it is treated as unreachable, and tried
    /// again after a backoff between `retry_min` and `retry_max`.
    pub fn new(transport: PeerTransport, options: PeerOptions) -> GrpcNetwork<D> {
        GrpcNetwork {
            options,
            transport,
            links: Arc::default(),
            fence: None,
            _snapshot: PhantomData,
        }
    }

    /// A handle that points this factory's peer links at new addresses.
    pub fn addresses(&self) -> PeerAddresses {
        PeerAddresses {
            options: self.options,
            transport: self.transport.clone(),
            links: Arc::clone(&self.links),
        }
    }
}

/// Points a node's peer links at the addresses its membership records. openraft keeps a
/// replication stream (and its client) when a member's address changes in the membership, so
/// the node tells the links itself, and the running streams follow.
#[derive(Clone)]
pub struct PeerAddresses {
    options: PeerOptions,
    transport: PeerTransport,
    links: Arc<Mutex<HashMap<NodeId, PeerLink>>>,
}

impl fmt::Debug for PeerAddresses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PeerAddresses")
    }
}

impl PeerAddresses {
    /// Records that peer `target` is reached at `addr`: a link to another address is
    /// pointed at this one.
    pub fn update(&self, target: NodeId, addr: &str) {
        let links = self.links.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(link) = links.get(&target)
            && link.addr() != addr
        {
            tracing::info!(target: "dbadger::peer", peer = target, addr, "peer moved");
            link.readdress(addr, endpoint(&self.transport, self.options, target, addr));
        }
    }
}

fn endpoint(
    transport: &PeerTransport,
    options: PeerOptions,
    target: NodeId,
    addr: &str,
) -> Result<tonic::transport::Endpoint, String> {
    transport
        .endpoint(addr)
        .map(|endpoint| endpoint.connect_timeout(options.connect_timeout))
        .map_err(|error| format!("node {target}: {error}"))
}

impl<D> fmt::Debug for GrpcNetwork<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcNetwork")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<RT, D> RaftNetworkFactory<Types<RT>> for GrpcNetwork<D>
where
    RT: AsyncRuntime,
    D: SnapshotData,
{
    type Network = GrpcRaftClient<D>;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> GrpcRaftClient<D> {
        let options = self.options;
        let mut links = self.links.lock().unwrap_or_else(PoisonError::into_inner);
        let link = match links.get(&target) {
            Some(link) => {
                if link.addr() != node.addr {
                    // Its address changed: the link, shared by any older client, follows.
                    let endpoint = endpoint(&self.transport, options, target, &node.addr);
                    link.readdress(&node.addr, endpoint);
                }
                link.clone()
            }
            None => {
                let endpoint = endpoint(&self.transport, options, target, &node.addr);
                let link = PeerLink::new(target, &node.addr, endpoint, options);
                links.insert(target, link.clone());
                link
            }
        };
        drop(links);
        GrpcRaftClient {
            min_rpc_timeout: options.min_rpc_timeout,
            link,
            target,
            fence: self.fence.clone(),
            _snapshot: PhantomData,
        }
    }
}

/// The Raft RPC client for one peer.
pub struct GrpcRaftClient<D> {
    target: NodeId,
    fence: Option<Arc<Fence>>,
    min_rpc_timeout: Duration,
    link: PeerLink,
    _snapshot: PhantomData<fn() -> D>,
}

impl<D> fmt::Debug for GrpcRaftClient<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcRaftClient")
            .field("target", &self.target)
            .finish()
    }
}

impl<D> GrpcRaftClient<D> {
    /// How long to wait for an answer: openraft's deadline, but never less than the floor.
    fn deadline(&self, option: &RPCOption) -> Duration {
        option.hard_ttl().max(self.min_rpc_timeout)
    }
}

impl<D> GrpcRaftClient<D> {
    fn client(&self) -> Result<RaftClient<Channel>, Failure> {
        self.link.client()
    }

    /// A request to this client's peer, with the fencing headers.
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        fenced(self.fence.as_deref(), message, self.target)
    }

    /// One unary RPC, once the peer's backoff allows: `send` makes the call on a client of
    /// the peer, under the option's deadline; `decode` converts the answer.
    async fn unary<RT, Answer, Sent, T>(
        &self,
        option: &RPCOption,
        send: impl FnOnce(RaftClient<Channel>) -> Sent,
        decode: impl FnOnce(Answer) -> Result<T, crate::WireError>,
    ) -> Result<T, RPCError<Types<RT>>>
    where
        RT: AsyncRuntime,
        Sent: Future<Output = Result<tonic::Response<Answer>, tonic::Status>>,
    {
        self.link.wait_turn().await;
        let answer = match self.client() {
            Ok(client) => call(self.deadline(option), send(client)).await,
            Err(failure) => Err(failure),
        };
        self.link.observe(&answer);
        decode(answer.map_err(Failure::into_rpc::<RT>)?).map_err(malformed::<RT>)
    }
}

fn fenced<T>(fence: Option<&Fence>, message: T, to: NodeId) -> tonic::Request<T> {
    match fence {
        Some(fence) => fence.request(message, to),
        None => tonic::Request::new(message),
    }
}

/// A peer's answer that does not convert: the peer is faulty, not unreachable.
fn malformed<RT: AsyncRuntime>(error: crate::WireError) -> RPCError<Types<RT>> {
    Failure::Network(error.to_string()).into_rpc::<RT>()
}

/// Runs one RPC under the option's hard deadline.
async fn call<T>(
    ttl: Duration,
    rpc: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(ttl, rpc).await {
        Ok(Ok(response)) => Ok(response.into_inner()),
        Ok(Err(status)) => Err(Failure::from_status(&status)),
        Err(_) => Err(Failure::Unreachable(format!("no answer within {ttl:?}"))),
    }
}

impl<RT, D> RaftNetworkV2<Types<RT>> for GrpcRaftClient<D>
where
    RT: AsyncRuntime,
    D: SnapshotData,
{
    type SnapshotData = D;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<Types<RT>>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<Types<RT>>, RPCError<Types<RT>>> {
        let request = self.request(wire::append_request_to_wire(&rpc));
        self.unary::<RT, _, _, _>(
            &option,
            |mut client| async move { client.append_entries(request).await },
            wire::append_response_from_wire,
        )
        .await
    }

    /// Pipelined replication over one `StreamAppend` call: see [`crate::append_pipeline`].
    /// An input known to hold one request is sent as a unary `AppendEntries` instead.
    /// The call is made as the returned stream is polled, with the first requests going out
    /// beside its headers; each request may wait up to the RPC deadline for its answer.
    fn stream_append<'s, S>(
        &'s mut self,
        input: S,
        option: RPCOption,
    ) -> BoxFuture<
        's,
        Result<
            BoxStream<'s, Result<StreamAppendResult<Types<RT>>, RPCError<Types<RT>>>>,
            RPCError<Types<RT>>,
        >,
    >
    where
        S: Stream<Item = AppendEntriesRequest<Types<RT>>> + Send + Unpin + 'static,
    {
        if input.size_hint().1 == Some(1) {
            // A single request (openraft's heartbeats) goes as one unary call. A stream would
            // add its own setup to the heartbeat's short deadline and pipeline nothing.
            return openraft::network::stream_append_sequential(self, input, option);
        }
        let patience = self.deadline(&option);
        let link = self.link.clone();
        let (fence, target) = (self.fence.clone(), self.target);
        async move {
            // Everything is made once the peer's backoff allows: a pipeline made before the
            // wait would count the wait against its patience and give up at once.
            let start = move |link: &PeerLink| -> Result<_, Failure> {
                let mut client = link.client()?;
                let (requests, outgoing) = PipelineRequests::channel();
                let call = async move {
                    client
                        .stream_append(fenced(fence.as_deref(), outgoing, target))
                        .await
                        .map(tonic::Response::into_inner)
                }
                .boxed();
                Ok(pipeline::<RT, S>(input, requests, call, patience))
            };
            Ok(paced::<RT>(link, start))
        }
        .boxed()
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<Types<RT>>,
        option: RPCOption,
    ) -> Result<VoteResponse<Types<RT>>, RPCError<Types<RT>>> {
        let request = self.request(wire::vote_request_to_wire(&rpc));
        self.unary::<RT, _, _, _>(
            &option,
            |mut client| async move { client.vote(request).await },
            wire::vote_response_from_wire,
        )
        .await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<Types<RT>>,
        option: RPCOption,
    ) -> Result<VoteResponse<Types<RT>>, RPCError<Types<RT>>> {
        let request = self.request(wire::vote_request_to_wire(&rpc));
        self.unary::<RT, _, _, _>(
            &option,
            |mut client| async move { client.pre_vote(request).await },
            wire::vote_response_from_wire,
        )
        .await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot<dbadger_core::raft_types::LeaderId, NodeId, Node, D>,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<Types<RT>>, StreamingError<Types<RT>>> {
        self.link.wait_turn().await;
        let mut client = self.client().map_err(Failure::into_streaming::<RT>)?;
        let size = snapshot.snapshot.size_bytes();
        let header = v1::SnapshotChunk {
            chunk: Some(v1::snapshot_chunk::Chunk::Header(
                wire::snapshot_header_to_wire(&vote, &snapshot.meta, size),
            )),
        };
        let reader = snapshot.snapshot.open().map_err(|error| {
            Failure::Network(format!("cannot read local snapshot: {error}")).into_streaming::<RT>()
        })?;
        let chunks = futures_util::stream::iter([header]).chain(data_chunks(reader));
        let ttl = self.deadline(&option);
        let transfer = call(ttl, client.install_snapshot(self.request(chunks)));
        let response = futures_util::select_biased! {
            closed = cancel.fuse() => return Err(StreamingError::Closed(closed)),
            response = Box::pin(transfer).fuse() => response,
        };
        self.link.observe(&response);
        let response = response.map_err(Failure::into_streaming::<RT>)?;
        let vote = wire::vote_from_wire(response.vote, "vote")
            .map_err(|error| Failure::Network(error.to_string()).into_streaming::<RT>())?;
        Ok(SnapshotResponse::new(vote))
    }

    /// No delay of openraft's own: the transport paces a peer that cannot be reached (its
    /// link's backoff, waited before each attempt). openraft's backoff would only delay the
    /// first request of a stream that may already have waited its turn, adding a second second
    /// to every recovery after an outage.
    fn backoff(&self) -> Option<Backoff> {
        Some(Backoff::new(std::iter::repeat(Duration::ZERO)))
    }

    async fn transfer_leader(
        &mut self,
        request: TransferLeaderRequest<Types<RT>>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<Types<RT>>, RPCError<Types<RT>>> {
        let request = self.request(wire::transfer_request_to_wire(&request));
        self.unary::<RT, _, _, _>(
            &option,
            |mut client| async move { client.transfer_leader(request).await },
            wire::transfer_response_from_wire,
        )
        .await
    }
}

/// A pipeline's answers: `start` makes it once the peer's backoff allows (the wait is inside
/// the stream, where openraft can cancel it), and each answer is recorded on the peer's link.
fn paced<RT: AsyncRuntime>(
    link: PeerLink,
    start: impl FnOnce(&PeerLink) -> Result<BoxStream<'static, AnswerItem<RT>>, Failure>
    + Send
    + 'static,
) -> BoxStream<'static, AnswerItem<RT>> {
    let starting = link.clone();
    futures_util::stream::once(async move {
        starting.wait_turn().await;
        match start(&starting) {
            Ok(answers) => answers,
            Err(failure) => futures_util::stream::iter([Err(failure.into_rpc::<RT>())]).boxed(),
        }
    })
    .flatten()
    .inspect(move |answer| match answer {
        Err(RPCError::Unreachable(unreachable)) => link.unreachable(&unreachable.to_string()),
        Ok(_) | Err(_) => link.answered(),
    })
    .boxed()
}

/// The snapshot's bytes as data chunks of at most [`SNAPSHOT_CHUNK_BYTES`], read as the stream
/// is polled. A read error ends the stream early; the receiver then sees a short snapshot and
/// refuses it.
fn data_chunks(
    reader: Box<dyn Read + Send>,
) -> impl futures_util::Stream<Item = v1::SnapshotChunk> + Send + 'static {
    futures_util::stream::unfold(Some(reader), |reader| async move {
        let mut reader = reader?;
        let mut chunk = Vec::with_capacity(SNAPSHOT_CHUNK_BYTES);
        match (&mut reader)
            .take(SNAPSHOT_CHUNK_BYTES as u64)
            .read_to_end(&mut chunk)
        {
            Ok(0) | Err(_) => None,
            Ok(_) => Some((
                v1::SnapshotChunk {
                    chunk: Some(v1::snapshot_chunk::Chunk::Data(chunk)),
                },
                Some(reader),
            )),
        }
    })
}
