//! The node behind the gRPC services: requests forwarded by other nodes, cluster
//! administration and client requests, each mapped onto the node's routed operations with the
//! deadline that fits its caller.

use std::time::Duration;

use dbadger_core::raft_types::NodeId;
use dbadger_core::storage::memory::MemorySnapshot;
use dbadger_core::storage::{SnapshotData, StateMachineStore};
use dbadger_core::{Command, Query, ReadPreference, RequestError, Response};
use dbadger_grpc::{ClusterHandler, ForwardHandler, KvHandler, RestoreSource, SnapshotBytes};
use dbadger_proto::v1;
use futures_util::future::BoxFuture;
use tokio::time::Instant;

use crate::membership_plan::MembershipChange;
use crate::node::{Engine, Node};
use crate::restore::SnapshotSource;
use crate::routing::deadline_budget;
use crate::snapshots::SnapshotInfo;

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
        // A join may arrive at any member: pass it on to the leader (one more hop).
        self.forwarded_membership(MembershipChange::Add {
            id,
            addr,
            learner_only,
        })
    }

    fn record_address(&self, id: NodeId, addr: String) -> BoxFuture<'_, Result<(), RequestError>> {
        self.forwarded_membership(MembershipChange::RecordAddress { id, addr })
    }

    fn remove_member(&self, id: NodeId) -> BoxFuture<'_, Result<(), RequestError>> {
        self.forwarded_membership(MembershipChange::Remove(id))
    }

    fn demote_member(&self, id: NodeId) -> BoxFuture<'_, Result<(), RequestError>> {
        self.forwarded_membership(MembershipChange::Demote(id))
    }

    fn transfer_leadership(&self, to: Option<NodeId>) -> BoxFuture<'_, Result<(), RequestError>> {
        self.forwarded_membership(MembershipChange::TransferLeadership(to))
    }
}

impl<S: StateMachineStore> Node<S> {
    /// A membership change another node passed here: passed on once more if this node does
    /// not lead either (a join may arrive at any member).
    fn forwarded_membership(
        &self,
        change: MembershipChange,
    ) -> BoxFuture<'_, Result<(), RequestError>> {
        Box::pin(async move {
            let deadline = Instant::now() + FORWARDED_DEADLINE;
            self.change_membership_routed(change, deadline, true).await
        })
    }

    /// A membership change asked for by an operator over the Cluster service.
    fn administered_membership(
        &self,
        change: MembershipChange,
    ) -> BoxFuture<'_, Result<(), RequestError>> {
        Box::pin(async move {
            let deadline = Instant::now() + self.request_timeout.max(FORWARDED_DEADLINE);
            self.change_membership_routed(change, deadline, true).await
        })
    }
}

fn wire_snapshot(info: SnapshotInfo) -> v1::SnapshotInfo {
    v1::SnapshotInfo {
        id: info.id,
        index: info.index,
        term: info.term,
        size_bytes: info.size_bytes,
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
        self.administered_membership(MembershipChange::Add {
            id,
            addr,
            learner_only,
        })
    }

    fn remove_peer(&self, id: NodeId) -> BoxFuture<'_, Result<(), RequestError>> {
        self.administered_membership(MembershipChange::Remove(id))
    }

    fn promote_peer(&self, id: NodeId) -> BoxFuture<'_, Result<(), RequestError>> {
        self.administered_membership(MembershipChange::Add {
            id,
            addr: String::new(),
            learner_only: false,
        })
    }

    fn demote_peer(&self, id: NodeId) -> BoxFuture<'_, Result<(), RequestError>> {
        self.administered_membership(MembershipChange::Demote(id))
    }

    fn transfer_leader(&self, to: Option<NodeId>) -> BoxFuture<'_, Result<(), RequestError>> {
        self.administered_membership(MembershipChange::TransferLeadership(to))
    }

    fn snapshot(&self) -> BoxFuture<'_, Result<v1::SnapshotInfo, RequestError>> {
        Box::pin(async move {
            let deadline = Instant::now() + self.request_timeout.max(FORWARDED_DEADLINE);
            self.take_snapshot(deadline).await.map(wire_snapshot)
        })
    }

    fn snapshots(&self) -> Result<Vec<v1::SnapshotInfo>, RequestError> {
        Ok(self
            .list_snapshots()?
            .into_iter()
            .map(wire_snapshot)
            .collect())
    }

    fn open_snapshot(&self, id: &str) -> Result<(v1::SnapshotInfo, SnapshotBytes), RequestError> {
        Node::open_snapshot(self, id).map(|(info, reader)| (wire_snapshot(info), reader))
    }

    fn restore(&self, snapshot: RestoreSource) -> BoxFuture<'_, Result<(u64, u64), RequestError>> {
        Box::pin(async move {
            let source: Box<SnapshotSource<'_>> = match snapshot {
                RestoreSource::Snapshot(id) => {
                    Node::open_snapshot(self, &id)?;
                    Box::new(move || {
                        Node::open_snapshot(self, &id)
                            .map(|(_, reader)| reader)
                            .map_err(|error| std::io::Error::other(error.to_string()))
                    })
                }
                RestoreSource::Upload(bytes) => {
                    let upload = MemorySnapshot::from_bytes(bytes);
                    Box::new(move || upload.open().map_err(std::io::Error::other))
                }
            };
            Node::restore(self, &*source)
                .await
                .map(|info| (info.revision, info.keys))
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
            cluster_id: if status.cluster_id == 0 {
                String::new()
            } else {
                format!("{:016x}", status.cluster_id)
            },
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
