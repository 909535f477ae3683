//! Forwarding client requests to the leader over the internal `Raft.Forward` RPC: the handler
//! trait the receiving node implements, and the client the forwarding node uses.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dbadger_core::codec::{
    decode_command, decode_query, decode_response, encode_command, encode_query, encode_response,
};
use dbadger_core::raft_types::NodeId;
use dbadger_core::{Command, Outcome, Query, RequestError, Response};
use dbadger_proto::v1;
use dbadger_proto::v1::raft_client::RaftClient;
use futures_util::future::BoxFuture;
use tonic::transport::Channel;
use tonic::{Request, Status};

use crate::PeerTransport;
use crate::status::{from_status, to_status};

/// A forwarded request that failed, and whether it may have reached the other node (and, for a
/// write, been proposed there).
#[derive(Debug)]
pub struct ForwardError {
    /// Why it failed.
    pub error: RequestError,
    /// False only when it certainly never left this node (bad address, connection refused):
    /// then a write can be sent elsewhere without the risk of applying it twice.
    pub may_have_arrived: bool,
}

impl ForwardError {
    fn delivered(error: RequestError) -> ForwardError {
        ForwardError {
            error,
            may_have_arrived: true,
        }
    }

    fn not_delivered(error: RequestError) -> ForwardError {
        ForwardError {
            error,
            may_have_arrived: false,
        }
    }
}

impl From<ForwardError> for RequestError {
    fn from(failure: ForwardError) -> RequestError {
        failure.error
    }
}

/// Whether the RPC failed because the connection was refused: nothing was sent. (The simulated
/// transport reports no error source, so there every transport failure counts as possibly
/// delivered.)
fn connection_refused(status: &Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(error) = source {
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        source = error.source();
    }
    false
}

/// What a node does with requests forwarded to it by followers.
pub trait ForwardHandler: Send + Sync + 'static {
    /// Proposes a write and answers once it is committed and applied here.
    fn write(&self, command: Command) -> BoxFuture<'_, Result<Response, RequestError>>;
    /// Answers a query linearizably.
    fn linearizable_read(&self, query: Query) -> BoxFuture<'_, Result<Response, RequestError>>;
    /// Adds a node to the cluster: as a learner, then, once it has caught up, as a voter
    /// (unless `learner_only`).
    fn add_member(
        &self,
        id: NodeId,
        addr: String,
        learner_only: bool,
    ) -> BoxFuture<'_, Result<(), RequestError>>;
    /// Records that member `id` (voter or learner, its role unchanged) is now reached at
    /// `addr`; `UnknownMember` if it is not a member.
    fn record_address(&self, id: NodeId, addr: String) -> BoxFuture<'_, Result<(), RequestError>>;
    /// Removes a node from the cluster.
    fn remove_member(&self, id: NodeId) -> BoxFuture<'_, Result<(), RequestError>>;
    /// Takes the vote away from voter `id` (it stays as a learner), on the leader.
    fn demote_member(&self, id: NodeId) -> BoxFuture<'_, Result<(), RequestError>>;
    /// Hands leadership to voter `to` (`None`: the best placed voter), on the leader.
    fn transfer_leadership(&self, to: Option<NodeId>) -> BoxFuture<'_, Result<(), RequestError>>;
}

/// Serves `Raft.Forward` with a [`ForwardHandler`].
pub(crate) async fn serve_forward(
    handler: &dyn ForwardHandler,
    request: v1::ForwardRequest,
) -> Result<v1::ForwardResponse, Status> {
    let malformed = |what: &'static str, source: dbadger_core::DecodeError| {
        Status::from(crate::WireError::Decode { what, source })
    };
    let response = match request.request {
        Some(v1::forward_request::Request::Command(bytes)) => {
            let command = decode_command(&bytes).map_err(|e| malformed("command", e))?;
            handler.write(command).await
        }
        Some(v1::forward_request::Request::Query(bytes)) => {
            let query = decode_query(&bytes).map_err(|e| malformed("query", e))?;
            handler.linearizable_read(query).await
        }
        Some(v1::forward_request::Request::AddMember(member)) if member.only_address => handler
            .record_address(member.id, member.addr)
            .await
            .map(|()| Response::Empty),
        Some(v1::forward_request::Request::AddMember(member)) => handler
            .add_member(member.id, member.addr, member.learner_only)
            .await
            .map(|()| Response::Empty),
        Some(v1::forward_request::Request::RemoveMember(id)) => {
            handler.remove_member(id).await.map(|()| Response::Empty)
        }
        Some(v1::forward_request::Request::DemoteMember(id)) => {
            handler.demote_member(id).await.map(|()| Response::Empty)
        }
        Some(v1::forward_request::Request::TransferLeadership(transfer)) => handler
            .transfer_leadership((transfer.to != 0).then_some(transfer.to))
            .await
            .map(|()| Response::Empty),
        None => return Err(crate::WireError::MissingField("request").into()),
    };
    match response {
        Ok(response) => Ok(v1::ForwardResponse {
            response: encode_response(&response),
        }),
        Err(error) => Err(to_status(&error)),
    }
}

/// The largest forwarded answer a [`Forwarder`] accepts by default: tonic's 4 MiB.
const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 << 20;

/// The most peer channels a [`Forwarder`] keeps: far more than any cluster has members, so
/// only addresses that left the membership long ago are ever dropped.
pub const MAX_FORWARD_CHANNELS: usize = 64;

/// Channels by address, the oldest dropped first beyond [`MAX_FORWARD_CHANNELS`].
#[derive(Default)]
struct Channels {
    by_addr: HashMap<String, RaftClient<Channel>>,
    /// Addresses in the order their channels were made.
    order: VecDeque<String>,
}

impl Channels {
    fn insert(&mut self, addr: &str, client: RaftClient<Channel>) {
        while self.order.len() >= MAX_FORWARD_CHANNELS {
            if let Some(oldest) = self.order.pop_front() {
                self.by_addr.remove(&oldest);
            }
        }
        self.order.push_back(addr.to_owned());
        self.by_addr.insert(addr.to_owned(), client);
    }
}

/// Sends requests to other nodes' `Raft.Forward`, keeping one channel per address (at most
/// [`MAX_FORWARD_CHANNELS`]).
#[derive(Clone)]
pub struct Forwarder {
    transport: PeerTransport,
    channels: Arc<Mutex<Channels>>,
    max_message_bytes: usize,
    connect_timeout: Duration,
    fence: Option<Arc<crate::fence::Fence>>,
}

impl Default for Forwarder {
    fn default() -> Forwarder {
        Forwarder::new(PeerTransport::default())
    }
}

impl fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Forwarder")
    }
}

impl Forwarder {
    /// A forwarder reaching peers over `transport`.
    pub fn new(transport: PeerTransport) -> Forwarder {
        Forwarder {
            transport,
            channels: Arc::default(),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            connect_timeout: Duration::from_secs(1),
            fence: None,
        }
    }

    /// The same forwarder stamping every request with `fence`'s cluster id, which the
    /// receiving node checks (see [`crate::fence`]).
    pub fn with_fence(self, fence: Arc<crate::fence::Fence>) -> Forwarder {
        Forwarder {
            fence: Some(fence),
            ..self
        }
    }

    /// The same forwarder giving up a connection attempt after `connect_timeout` (default 1 s;
    /// a node uses its `peer_connect_timeout`).
    pub fn with_connect_timeout(self, connect_timeout: Duration) -> Forwarder {
        Forwarder {
            connect_timeout,
            ..self
        }
    }

    /// How many peer channels are kept now.
    pub fn channel_count(&self) -> usize {
        self.channels().by_addr.len()
    }

    fn channels(&self) -> std::sync::MutexGuard<'_, Channels> {
        // A map edited in single steps: a panic elsewhere cannot leave it torn.
        self.channels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The same forwarder accepting answers up to `max_message_bytes`. A node sets it above
    /// the largest answer its response limit allows, so that an applied write's answer always
    /// comes back.
    pub fn with_max_message_bytes(self, max_message_bytes: usize) -> Forwarder {
        Forwarder {
            max_message_bytes,
            ..self
        }
    }

    /// Drops the channel to `addr`, so that the next call makes a new connection.
    fn forget(&self, addr: &str) {
        let mut channels = self.channels();
        channels.by_addr.remove(addr);
        channels.order.retain(|known| known != addr);
    }

    fn client(&self, addr: &str) -> Result<RaftClient<Channel>, RequestError> {
        let mut channels = self.channels();
        if let Some(client) = channels.by_addr.get(addr) {
            return Ok(client.clone());
        }
        let endpoint = self
            .transport
            .endpoint(addr)
            .map_err(|reason| RequestError::unavailable(reason, Outcome::NotApplied))?;
        let client = RaftClient::new(
            endpoint
                .connect_timeout(self.connect_timeout)
                .connect_lazy(),
        )
        .max_decoding_message_size(self.max_message_bytes)
        .max_encoding_message_size(self.max_message_bytes);
        channels.insert(addr, client.clone());
        Ok(client)
    }

    async fn forward(
        &self,
        addr: &str,
        request: v1::forward_request::Request,
        deadline: Duration,
    ) -> Result<Response, ForwardError> {
        let mut client = self.client(addr).map_err(ForwardError::not_delivered)?;
        let mut grpc_request = Request::new(v1::ForwardRequest {
            request: Some(request),
        });
        grpc_request.set_timeout(deadline);
        if let Some(fence) = &self.fence {
            fence.stamp_cluster(grpc_request.metadata_mut());
        }
        let reply = match tokio::time::timeout(deadline, client.forward(grpc_request)).await {
            Ok(Ok(reply)) => reply.into_inner(),
            Ok(Err(status)) if connection_refused(&status) => {
                let error = RequestError::unavailable(
                    format!("{addr} refused the connection"),
                    Outcome::NotApplied,
                );
                return Err(ForwardError::not_delivered(error));
            }
            Ok(Err(status)) => {
                if crate::status::error_detail(&status).is_none() {
                    // Not the node's answer but the connection's failure: connect afresh.
                    self.forget(addr);
                }
                return Err(ForwardError::delivered(from_status(&status)));
            }
            Err(_) => {
                // A connection whose call timed out may be stalled (a partition leaves TCP in
                // retransmission backoff for seconds after it heals): the next call connects
                // afresh, while calls still running on this one finish on it.
                self.forget(addr);
                return Err(ForwardError::delivered(RequestError::Timeout {
                    deadline_ms: u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX),
                    outcome: Outcome::Unknown,
                }));
            }
        };
        decode_response(&reply.response).map_err(|error| {
            ForwardError::delivered(RequestError::Internal(format!(
                "leader sent a malformed response: {error}"
            )))
        })
    }

    /// Forwards a write to the node at `addr`.
    pub async fn write(
        &self,
        addr: &str,
        command: &Command,
        deadline: Duration,
    ) -> Result<Response, ForwardError> {
        self.forward(
            addr,
            v1::forward_request::Request::Command(encode_command(command)),
            deadline,
        )
        .await
    }

    /// Forwards a linearizable read to the node at `addr`.
    pub async fn linearizable_read(
        &self,
        addr: &str,
        query: &Query,
        deadline: Duration,
    ) -> Result<Response, ForwardError> {
        self.forward(
            addr,
            v1::forward_request::Request::Query(encode_query(query)),
            deadline,
        )
        .await
    }

    /// Asks the node at `addr` to add node `id` (reachable at `member_addr`) to the cluster.
    pub async fn add_member(
        &self,
        addr: &str,
        id: NodeId,
        member_addr: &str,
        learner_only: bool,
        deadline: Duration,
    ) -> Result<(), ForwardError> {
        let request = v1::forward_request::Request::AddMember(v1::AddMember {
            id,
            addr: member_addr.to_owned(),
            learner_only,
            only_address: false,
        });
        self.forward(addr, request, deadline).await.map(|_| ())
    }

    /// Asks the node at `addr` to record that member `id` is now reached at `member_addr`
    /// (never adding it: refused if it is not a member).
    pub async fn record_address(
        &self,
        addr: &str,
        id: NodeId,
        member_addr: &str,
        deadline: Duration,
    ) -> Result<(), ForwardError> {
        let request = v1::forward_request::Request::AddMember(v1::AddMember {
            id,
            addr: member_addr.to_owned(),
            learner_only: false,
            only_address: true,
        });
        self.forward(addr, request, deadline).await.map(|_| ())
    }

    /// Asks the node at `addr` to remove node `id` from the cluster.
    pub async fn remove_member(
        &self,
        addr: &str,
        id: NodeId,
        deadline: Duration,
    ) -> Result<(), ForwardError> {
        let request = v1::forward_request::Request::RemoveMember(id);
        self.forward(addr, request, deadline).await.map(|_| ())
    }

    /// Asks the node at `addr` to take the vote away from node `id`.
    pub async fn demote_member(
        &self,
        addr: &str,
        id: NodeId,
        deadline: Duration,
    ) -> Result<(), ForwardError> {
        let request = v1::forward_request::Request::DemoteMember(id);
        self.forward(addr, request, deadline).await.map(|_| ())
    }

    /// Asks the node at `addr` to hand leadership to voter `to` (`None`: the best placed).
    pub async fn transfer_leadership(
        &self,
        addr: &str,
        to: Option<NodeId>,
        deadline: Duration,
    ) -> Result<(), ForwardError> {
        let request = v1::forward_request::Request::TransferLeadership(v1::TransferLeadership {
            to: to.unwrap_or(0),
        });
        self.forward(addr, request, deadline).await.map(|_| ())
    }
}

#[cfg(all(test, not(madsim)))]
mod tests {
    use super::*;

    /// Addresses seen once do not pile up: the channel map stays at its bound, and the
    /// newest address keeps its channel.
    #[tokio::test]
    async fn the_channel_map_is_bounded() {
        let forwarder = Forwarder::default();
        for port in 0..(MAX_FORWARD_CHANNELS as u16 * 3) {
            forwarder
                .client(&format!("127.0.0.1:{}", 20_000 + port))
                .expect("a channel");
        }
        assert_eq!(forwarder.channel_count(), MAX_FORWARD_CHANNELS);
        let newest = format!("127.0.0.1:{}", 20_000 + MAX_FORWARD_CHANNELS as u16 * 3 - 1);
        assert!(forwarder.channels().by_addr.contains_key(&newest));
    }
}
