//! The node behind the gRPC services: requests forwarded by other nodes, cluster
//! administration and client requests, each mapped onto the node's routed operations with the
//! deadline that fits its caller.

use std::time::Duration;

use dbadger_core::raft_types::NodeId;
use dbadger_core::storage::StateMachineStore;
use dbadger_core::{Command, Query, ReadPreference, RequestError, Response};
use dbadger_grpc::{ClusterHandler, ForwardHandler, KvHandler};
use dbadger_proto::v1;
use futures_util::future::BoxFuture;
use tokio::time::Instant;

use crate::node::{Engine, Node};
use crate::routing::deadline_budget;

/// The longest a forwarded request runs here; the forwarding node's own deadline (sent as the
/// gRPC timeout) usually ends it sooner.
const FORWARDED_DEADLINE: Duration = Duration::from_secs(30);

/// Requests forwarded here by followers: served locally, never forwarded again (a follower
/// that is wrong about the leader gets a hint and retries).
impl<S: StateMachineStore> ForwardHandler for Node<S> {
    fn write(&self, command: Command) -> BoxFuture<'_, Result<Response, RequestError>> {
        Box::pin(async move {
            let deadline = Instant::now() + FORWARDED_DEADLINE;
            self.limits.validate_command(&command)?;
            self.write_routed(command, deadline, false).await
        })
    }

    fn linearizable_read(&self, query: Query) -> BoxFuture<'_, Result<Response, RequestError>> {
        Box::pin(async move {
            let deadline = Instant::now() + FORWARDED_DEADLINE;
            self.limits.validate_query(&query)?;
            self.read_routed(query, ReadPreference::Leader, deadline, false)
                .await
        })
    }

    fn add_member(
        &self,
        id: NodeId,
        addr: String,
        learner_only: bool,
    ) -> BoxFuture<'_, Result<(), RequestError>> {
        Box::pin(async move {
            let deadline = Instant::now() + FORWARDED_DEADLINE;
            // A join may arrive at any member: pass it on to the leader (one more hop).
            self.add_member_routed(id, addr, learner_only, deadline, true)
                .await
        })
    }

    fn remove_member(&self, id: NodeId) -> BoxFuture<'_, Result<(), RequestError>> {
        Box::pin(async move {
            let deadline = Instant::now() + FORWARDED_DEADLINE;
            self.remove_member_routed(id, deadline, true).await
        })
    }
}

/// Cluster administration over gRPC.
impl<S: StateMachineStore> ClusterHandler for Node<S> {
    fn add_peer(
        &self,
        id: NodeId,
        addr: String,
        learner_only: bool,
    ) -> BoxFuture<'_, Result<(), RequestError>> {
        Box::pin(async move {
            let deadline = Instant::now() + self.request_timeout.max(FORWARDED_DEADLINE);
            self.add_member_routed(id, addr, learner_only, deadline, true)
                .await
        })
    }

    fn remove_peer(&self, id: NodeId) -> BoxFuture<'_, Result<(), RequestError>> {
        Box::pin(async move {
            let deadline = Instant::now() + self.request_timeout;
            self.remove_member_routed(id, deadline, true).await
        })
    }

    fn status(&self) -> v1::StatusResponse {
        let status = Engine::status(self);
        let (leader_id, leader_addr) = status.leader.clone().unwrap_or_default();
        v1::StatusResponse {
            id: status.id,
            addr: self.addr.clone(),
            leader_id,
            leader_addr,
            members: status
                .members
                .iter()
                .map(|(id, addr, voter)| v1::Member {
                    id: *id,
                    addr: addr.clone(),
                    voter: *voter,
                })
                .collect(),
            is_leader: status.is_leader,
            ready: status.is_ready(),
            stats: Some(v1::Stats {
                term: status.term,
                last_log_index: status.last_log_index,
                commit_index: status.committed_index,
                applied_index: status.applied_index,
                snapshot_index: status.snapshot_index,
                purged_index: status.purged_index,
                state: status.state.to_owned(),
            }),
        }
    }
}

/// Client requests arriving over gRPC: validated here, answered or forwarded like calls on
/// the embedded API, within the client's deadline less a margin (so that the node's typed
/// answer arrives before the client's own timer fires), never longer than the node's.
impl<S: StateMachineStore> KvHandler for Node<S> {
    fn write(
        &self,
        command: Command,
        timeout: Option<Duration>,
    ) -> BoxFuture<'_, Result<Response, RequestError>> {
        let budget = deadline_budget(timeout, self.request_timeout);
        let written = Engine::write(self, command, Instant::now() + budget);
        Box::pin(async move { written.await.map_err(|error| error.with_deadline(budget)) })
    }

    fn read(
        &self,
        query: Query,
        preference: ReadPreference,
        timeout: Option<Duration>,
    ) -> BoxFuture<'_, Result<Response, RequestError>> {
        let budget = deadline_budget(timeout, self.request_timeout);
        let read = Engine::read(self, query, preference, Instant::now() + budget);
        Box::pin(async move { read.await.map_err(|error| error.with_deadline(budget)) })
    }
}
