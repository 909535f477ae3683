//! The node driver: one openraft `Raft` over a store, answering writes, reads and membership
//! changes locally when it leads and forwarding them to the leader when it does not.
//!
//! This file holds the node itself and what the rest of the crate sees of it ([`Engine`]).
//! How a request finds the leader is in `requests.rs` (with the pure policy in `routing.rs`),
//! membership changes in `membership.rs`, and the gRPC handler traits in `handlers.rs`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use dbadger_core::raft_storage::RaftStateMachineStore;
use dbadger_core::raft_types::{NodeId, RaftTypes};
use dbadger_core::storage::StateMachineStore;
use dbadger_core::{Command, Limits, Outcome, Query, ReadPreference, RequestError, Response};
use dbadger_grpc::Forwarder;
use futures_util::future::BoxFuture;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::errors::Fatal;
use openraft::{Raft, ServerState};
use tokio::time::Instant;

use crate::membership_plan::MembershipChange;
use crate::metrics::Metrics;
use crate::node_status::{NodeStatus, Readiness};
use crate::restore::{RestoreInfo, SnapshotSource};
use crate::routing::LEADER_POLL;
use crate::runtime::Runtime;
use crate::snapshots::SnapshotInfo;

pub(crate) type Types = RaftTypes<Runtime>;

/// What the rest of the crate sees of a node, whatever its store.
pub(crate) trait Engine: Send + Sync + 'static {
    fn write(
        &self,
        command: Command,
        deadline: Instant,
    ) -> BoxFuture<'_, Result<Response, RequestError>>;
    fn read(
        &self,
        query: Query,
        preference: ReadPreference,
        deadline: Instant,
    ) -> BoxFuture<'_, Result<Response, RequestError>>;
    fn join(
        &self,
        seeds: Vec<String>,
        deadline: Instant,
    ) -> BoxFuture<'_, Result<(), RequestError>>;
    fn status(&self) -> NodeStatus;
    fn wait_applied(
        &self,
        index: u64,
        deadline: Instant,
    ) -> BoxFuture<'_, Result<(), RequestError>>;
    fn shutdown(&self) -> BoxFuture<'_, ()>;
    fn change_membership(
        &self,
        change: MembershipChange,
        deadline: Instant,
    ) -> BoxFuture<'_, Result<(), RequestError>>;
    fn leave(&self, deadline: Instant) -> BoxFuture<'_, Result<bool, RequestError>>;
    fn snapshot(&self, deadline: Instant) -> BoxFuture<'_, Result<SnapshotInfo, RequestError>>;
    fn snapshots(&self) -> Result<Vec<SnapshotInfo>, RequestError>;
    fn restore<'a>(
        &'a self,
        source: &'a SnapshotSource<'a>,
    ) -> BoxFuture<'a, Result<RestoreInfo, RequestError>>;
    fn open_snapshot(
        &self,
        id: &str,
    ) -> Result<(SnapshotInfo, Box<dyn std::io::Read + Send>), RequestError>;
}

/// A running node over the state-machine store `S`.
pub(crate) struct Node<S: StateMachineStore> {
    pub(crate) id: NodeId,
    pub(crate) addr: String,
    pub(crate) raft: Raft<Types, RaftStateMachineStore<S>>,
    pub(crate) store: Arc<S>,
    pub(crate) forwarder: Forwarder,
    pub(crate) limits: Limits,
    /// The deadline of a request that brings none.
    pub(crate) request_timeout: Duration,
    /// How long a request waits for a leader, and a leader for its quorum, before giving up:
    /// one election timeout (openraft's `election_timeout_max`).
    pub(crate) patience: Duration,
    pub(crate) metrics: Arc<Metrics>,
    /// This node's fencing identity: its cluster id.
    pub(crate) fence: Arc<dbadger_grpc::Fence>,
    /// Whether it had caught up when last asked (the readiness rule needs it).
    pub(crate) readiness: Readiness,
}

pub(crate) fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// The request's deadline passed. Whoever set the deadline (`Db`, or the Kv service for a
/// client's request) fills in its length with `RequestError::with_deadline`.
pub(crate) fn timeout(outcome: Outcome) -> RequestError {
    RequestError::Timeout {
        deadline_ms: 0,
        outcome,
    }
}

/// What a request learns when the Raft core has stopped: the node is shutting down (a normal
/// stop), or it failed and must be restarted (a storage error or a panic in the core).
pub(crate) fn stopped(fatal: &Fatal<Types>, outcome: Outcome) -> RequestError {
    match fatal {
        Fatal::Stopped => RequestError::ShuttingDown { outcome },
        failure => RequestError::Fatal {
            reason: describe_failure(failure),
        },
    }
}

/// Why the Raft core stopped, if it failed (a normal stop is not a failure).
pub(crate) fn failure_of(running: &Result<(), Fatal<Types>>) -> Option<String> {
    match running {
        Ok(()) | Err(Fatal::Stopped) => None,
        Err(failure) => Some(describe_failure(failure)),
    }
}

/// A failure in a few words: openraft's storage errors name the operation with debug dumps
/// of log ids; the innermost cause (the disk's error) is what an operator needs.
fn describe_failure(failure: &Fatal<Types>) -> String {
    let mut innermost: &dyn std::error::Error = failure;
    while let Some(cause) = innermost.source() {
        innermost = cause;
    }
    match failure {
        Fatal::StorageError(_) => format!("storage failed: {innermost}"),
        other => other.to_string(),
    }
}

fn state_name(state: ServerState) -> &'static str {
    match state {
        ServerState::Leader => "leader",
        ServerState::Follower => "follower",
        ServerState::Candidate => "candidate",
        ServerState::Learner => "learner",
        ServerState::Shutdown => "shutdown",
    }
}

impl<S: StateMachineStore> Engine for Node<S> {
    fn write(
        &self,
        command: Command,
        deadline: Instant,
    ) -> BoxFuture<'_, Result<Response, RequestError>> {
        Box::pin(async move {
            let started = Instant::now();
            let operation = command.name();
            let outcome = match self.limits.validate_command(&command) {
                Ok(()) => self.write_routed(command, deadline, true).await,
                Err(invalid) => Err(invalid.into()),
            };
            self.metrics
                .record_request(operation, &outcome, started.elapsed());
            outcome
        })
    }

    fn read(
        &self,
        query: Query,
        preference: ReadPreference,
        deadline: Instant,
    ) -> BoxFuture<'_, Result<Response, RequestError>> {
        Box::pin(async move {
            let started = Instant::now();
            let operation = query.name();
            let outcome = match self.limits.validate_query(&query) {
                Ok(()) => self.read_routed(query, preference, deadline, true).await,
                Err(invalid) => Err(invalid.into()),
            };
            self.metrics
                .record_request(operation, &outcome, started.elapsed());
            outcome
        })
    }

    fn join(
        &self,
        seeds: Vec<String>,
        deadline: Instant,
    ) -> BoxFuture<'_, Result<(), RequestError>> {
        Box::pin(async move {
            let mut last_error =
                RequestError::unavailable("no seed address given", Outcome::NotApplied);
            for seed in seeds.iter().cycle().take(seeds.len() * 8) {
                match self
                    .forwarder
                    .add_member(seed, self.id, &self.addr, false, remaining(deadline))
                    .await
                    .map_err(RequestError::from)
                {
                    Ok(()) => return Ok(()),
                    Err(error) if error.is_retryable() && remaining(deadline) > LEADER_POLL => {
                        last_error = error;
                        tokio::time::sleep(LEADER_POLL).await;
                    }
                    Err(error) => return Err(error),
                }
            }
            Err(last_error)
        })
    }

    fn status(&self) -> NodeStatus {
        let metrics = self.raft.metrics().borrow_watched().clone();
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let members: Vec<(NodeId, String, bool)> = membership
            .nodes()
            .map(|(id, node)| (*id, node.addr.clone(), voters.contains(id)))
            .collect();
        let leader = metrics.current_leader.and_then(|leader| {
            membership
                .get_node(&leader)
                .map(|node| (leader, node.addr.clone()))
        });
        let committed_index = metrics.local_committed.map_or(0, |id| id.index);
        let applied_index = metrics.last_applied.map_or(0, |id| id.index);
        let caught_up = self
            .readiness
            .observe(leader.is_some(), applied_index, committed_index);
        NodeStatus {
            id: self.id,
            leader,
            members,
            term: metrics.current_term,
            committed_index,
            applied_index,
            last_log_index: metrics.last_log_index.unwrap_or(0),
            snapshot_index: metrics.snapshot.map_or(0, |id| id.index),
            purged_index: metrics.purged.map_or(0, |id| id.index),
            is_leader: metrics.state == ServerState::Leader,
            state: state_name(metrics.state),
            replication: metrics
                .replication
                .as_ref()
                .map(|progress| {
                    progress
                        .iter()
                        .filter(|(id, _)| **id != self.id)
                        .map(|(id, matched)| (*id, matched.as_ref().map(|log_id| log_id.index)))
                        .collect()
                })
                .unwrap_or_default(),
            failure: failure_of(&metrics.running_state),
            cluster_id: self.fence.cluster(),
            caught_up,
        }
    }

    fn wait_applied(
        &self,
        index: u64,
        deadline: Instant,
    ) -> BoxFuture<'_, Result<(), RequestError>> {
        Box::pin(self.await_applied_here(index, deadline, Outcome::NotApplied))
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let _ = self.raft.shutdown().await;
        })
    }

    fn change_membership(
        &self,
        change: MembershipChange,
        deadline: Instant,
    ) -> BoxFuture<'_, Result<(), RequestError>> {
        Box::pin(self.change_membership_routed(change, deadline, true))
    }

    fn leave(&self, deadline: Instant) -> BoxFuture<'_, Result<bool, RequestError>> {
        Box::pin(Node::leave(self, deadline))
    }

    fn snapshot(&self, deadline: Instant) -> BoxFuture<'_, Result<SnapshotInfo, RequestError>> {
        Box::pin(self.take_snapshot(deadline))
    }

    fn snapshots(&self) -> Result<Vec<SnapshotInfo>, RequestError> {
        self.list_snapshots()
    }

    fn restore<'a>(
        &'a self,
        source: &'a SnapshotSource<'a>,
    ) -> BoxFuture<'a, Result<RestoreInfo, RequestError>> {
        Box::pin(Node::restore(self, source))
    }

    fn open_snapshot(
        &self,
        id: &str,
    ) -> Result<(SnapshotInfo, Box<dyn std::io::Read + Send>), RequestError> {
        Node::open_snapshot(self, id)
    }
}

impl<S: StateMachineStore> Node<S> {
    /// [`NodeStatus::is_ready`], read from openraft's server and data metrics in place (the
    /// two the health service watches): no copy of the metrics and no member list.
    #[cfg(not(madsim))]
    pub(crate) fn is_ready(&self) -> bool {
        let leader_known = {
            let server = self.raft.server_metrics();
            let server = server.borrow_watched();
            server.current_leader.is_some_and(|leader| {
                server
                    .membership_config
                    .membership()
                    .get_node(&leader)
                    .is_some()
            })
        };
        let (applied, committed) = {
            let data = self.raft.data_metrics();
            let data = data.borrow_watched();
            (
                data.last_applied.map_or(0, |id| id.index),
                data.local_committed.map_or(0, |id| id.index),
            )
        };
        let running = self.raft.metrics().borrow_watched().running_state.is_ok();
        running && self.readiness.observe(leader_known, applied, committed)
    }

    /// Waits until this node has applied the log up to `index`; a deadline that passes first is
    /// a timeout with `outcome`.
    pub(crate) async fn await_applied_here(
        &self,
        index: u64,
        deadline: Instant,
        outcome: Outcome,
    ) -> Result<(), RequestError> {
        self.raft
            .wait(Some(remaining(deadline)))
            .applied_index_at_least(Some(index), "applied here")
            .await
            .map(|_| ())
            .map_err(|_| timeout(outcome))
    }
}
