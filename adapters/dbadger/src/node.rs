//! The node driver: one openraft `Raft` over a store, answering writes, reads and membership
//! changes locally when it leads and forwarding them to the leader when it does not.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use dbadger_core::raft_storage::RaftStateMachineStore;
use dbadger_core::raft_types::{Node as NodeAddress, NodeId, RaftTypes};
use dbadger_core::storage::StateMachineStore;
use dbadger_core::{
    Command, Limits, Query, ReadPreference, RequestError, Response, StorageError, rules,
};
use dbadger_grpc::{ForwardHandler, Forwarder};
use futures_util::future::BoxFuture;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::errors::{ClientWriteError, ForwardToLeader, LinearizableReadError, RaftError};
use openraft::{ChangeMembers, Raft, ReadPolicy, ServerState};
use tokio::time::Instant;

use crate::runtime::Runtime;

type Types = RaftTypes<Runtime>;

/// How often a request waiting for a leader re-checks.
const LEADER_POLL: Duration = Duration::from_millis(20);

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
}

/// A node's view of the cluster at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    /// This node's id.
    pub id: NodeId,
    /// The leader this node knows of.
    pub leader: Option<(NodeId, String)>,
    /// Every member: id, address, voter or learner.
    pub members: Vec<(NodeId, String, bool)>,
    /// The current term.
    pub term: u64,
    /// The index of the last entry applied here.
    pub applied_index: u64,
    /// Whether this node leads.
    pub is_leader: bool,
}

/// A running node over the state-machine store `S`.
pub(crate) struct Node<S: StateMachineStore> {
    pub(crate) id: NodeId,
    pub(crate) addr: String,
    pub(crate) raft: Raft<Types, RaftStateMachineStore<S>>,
    pub(crate) store: Arc<S>,
    pub(crate) forwarder: Forwarder,
    pub(crate) limits: Limits,
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// The deadline passed; the error names how late it is now relative to the deadline's start
/// only approximately, so it reports the elapsed part as zero past the deadline.
fn timeout(_deadline: Instant) -> RequestError {
    RequestError::Timeout { deadline_ms: 0 }
}

fn storage_error(error: StorageError) -> RequestError {
    match error {
        StorageError::Full { max_bytes } => RequestError::StorageFull { max_bytes },
        other => RequestError::Internal(other.to_string()),
    }
}

/// Where to send a request this node cannot serve, per openraft's hint.
enum Route {
    Forward(NodeId, String),
    NoLeader,
}

impl<S: StateMachineStore> Node<S> {
    fn route(&self, forward: &ForwardToLeader<Types>) -> Route {
        match (forward.leader_id, &forward.leader_node) {
            (Some(id), Some(node)) if id != self.id => Route::Forward(id, node.addr.clone()),
            _ => Route::NoLeader,
        }
    }

    fn no_leader(&self, reason: &str) -> RequestError {
        RequestError::Unavailable {
            reason: reason.to_owned(),
            leader: None,
        }
    }

    /// Waits a little for a leader to appear; false once the deadline is near.
    async fn await_leader(&self, deadline: Instant) -> bool {
        let wait = remaining(deadline).min(LEADER_POLL * 10);
        if wait < LEADER_POLL {
            return false;
        }
        let _ = self
            .raft
            .wait(Some(wait))
            .metrics(
                |metrics| metrics.current_leader.is_some(),
                "a leader is known",
            )
            .await;
        remaining(deadline) > Duration::ZERO
    }

    /// Proposes a write here; `forward` says whether a follower may pass it to the leader.
    async fn write_routed(
        &self,
        command: Command,
        deadline: Instant,
        forward: bool,
    ) -> Result<Response, RequestError> {
        loop {
            let outcome =
                tokio::time::timeout_at(deadline, self.raft.client_write(command.clone())).await;
            let error = match outcome {
                Err(_) => return Err(timeout(deadline)),
                Ok(Ok(written)) => return Ok(written.data),
                Ok(Err(RaftError::Fatal(_))) => return Err(RequestError::ShuttingDown),
                Ok(Err(RaftError::APIError(error))) => error,
            };
            match error {
                ClientWriteError::ForwardToLeader(hint) => match self.route(&hint) {
                    Route::Forward(leader, addr) if forward => {
                        return self
                            .forwarder
                            .write(&addr, &command, remaining(deadline))
                            .await
                            .map_err(|error| with_leader_hint(error, leader, &addr));
                    }
                    Route::Forward(leader, addr) => {
                        return Err(RequestError::Unavailable {
                            reason: "not the leader".to_owned(),
                            leader: Some((leader, addr)),
                        });
                    }
                    Route::NoLeader => {
                        if !self.await_leader(deadline).await {
                            return Err(self.no_leader("no leader elected"));
                        }
                    }
                },
                ClientWriteError::LogEntryDiscarded(_) => {
                    return Err(
                        self.no_leader("leadership changed; the write may or may not have applied")
                    );
                }
                other => return Err(RequestError::Internal(other.to_string())),
            }
        }
    }

    /// Answers a read; Leader reads confirm leadership with a ReadIndex round first.
    async fn read_routed(
        &self,
        query: Query,
        preference: ReadPreference,
        deadline: Instant,
        forward: bool,
    ) -> Result<Response, RequestError> {
        if preference == ReadPreference::Local {
            return self.read_local(&query);
        }
        loop {
            let outcome = tokio::time::timeout_at(
                deadline,
                self.raft.ensure_linearizable(ReadPolicy::ReadIndex),
            )
            .await;
            let error = match outcome {
                Err(_) => return Err(timeout(deadline)),
                Ok(Ok(_)) => return self.read_local(&query),
                Ok(Err(RaftError::Fatal(_))) => return Err(RequestError::ShuttingDown),
                Ok(Err(RaftError::APIError(error))) => error,
            };
            match error {
                LinearizableReadError::ForwardToLeader(hint) => match self.route(&hint) {
                    Route::Forward(leader, addr) if forward => {
                        return self
                            .forwarder
                            .linearizable_read(&addr, &query, remaining(deadline))
                            .await
                            .map_err(|error| with_leader_hint(error, leader, &addr));
                    }
                    Route::Forward(leader, addr) => {
                        return Err(RequestError::Unavailable {
                            reason: "not the leader".to_owned(),
                            leader: Some((leader, addr)),
                        });
                    }
                    Route::NoLeader => {
                        if !self.await_leader(deadline).await {
                            return Err(self.no_leader("no leader elected"));
                        }
                    }
                },
                LinearizableReadError::QuorumNotEnough(error) => {
                    return Err(self.no_leader(&format!("leader cannot reach a quorum: {error}")));
                }
            }
        }
    }

    fn read_local(&self, query: &Query) -> Result<Response, RequestError> {
        let view = self.store.read().map_err(storage_error)?;
        rules::read(query, &view, &self.limits).map_err(storage_error)
    }

    /// Adds `id` as a learner, waits for it to catch up, then makes it a voter. Runs on the
    /// leader; a follower forwards it.
    async fn add_member_routed(
        &self,
        id: NodeId,
        addr: String,
        deadline: Instant,
    ) -> Result<(), RequestError> {
        let node = NodeAddress { addr };
        let added =
            tokio::time::timeout_at(deadline, self.raft.add_learner(id, node.clone(), true)).await;
        match added {
            Err(_) => return Err(timeout(deadline)),
            Ok(Ok(_)) => {}
            Ok(Err(RaftError::Fatal(_))) => return Err(RequestError::ShuttingDown),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(hint)))) => {
                return match self.route(&hint) {
                    Route::Forward(leader, leader_addr) => self
                        .forwarder
                        .add_member(&leader_addr, id, &node.addr, remaining(deadline))
                        .await
                        .map_err(|error| with_leader_hint(error, leader, &leader_addr)),
                    Route::NoLeader => Err(self.no_leader("no leader to add a member")),
                };
            }
            Ok(Err(RaftError::APIError(other))) => {
                return Err(RequestError::Internal(other.to_string()));
            }
        }
        self.await_caught_up(id, deadline).await?;
        loop {
            let promoted = tokio::time::timeout_at(
                deadline,
                self.raft
                    .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false),
            )
            .await;
            match promoted {
                Err(_) => return Err(timeout(deadline)),
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(RaftError::Fatal(_))) => return Err(RequestError::ShuttingDown),
                Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(error)))) => {
                    // Another change is in flight: wait for it to commit, then retry.
                    if remaining(deadline) < LEADER_POLL {
                        return Err(RequestError::Unavailable {
                            reason: format!("membership change did not go through: {error}"),
                            leader: None,
                        });
                    }
                    tokio::time::sleep(LEADER_POLL).await;
                }
                Ok(Err(RaftError::APIError(other))) => {
                    return Err(RequestError::Internal(other.to_string()));
                }
            }
        }
    }

    /// Waits until the learner's replicated log reaches the leader's last index, so promoting
    /// it cannot stall the cluster on an unreachable or lagging node.
    async fn await_caught_up(&self, id: NodeId, deadline: Instant) -> Result<(), RequestError> {
        let target = self.raft.metrics().borrow_watched().last_log_index;
        let caught_up = self
            .raft
            .wait(Some(remaining(deadline)))
            .metrics(
                move |metrics| {
                    metrics
                        .replication
                        .as_ref()
                        .and_then(|progress| progress.get(&id).cloned().flatten())
                        .map(|matched| matched.index)
                        >= target
                },
                "the new member caught up",
            )
            .await;
        caught_up.map(|_| ()).map_err(|_| RequestError::Unavailable {
            reason: format!("node {id} did not catch up before the deadline; it is reachable as a learner only"),
            leader: None,
        })
    }
}

fn with_leader_hint(error: RequestError, leader: NodeId, addr: &str) -> RequestError {
    match error {
        RequestError::Unavailable {
            reason,
            leader: None,
        } => RequestError::Unavailable {
            reason,
            leader: Some((leader, addr.to_owned())),
        },
        other => other,
    }
}

impl<S: StateMachineStore> Engine for Node<S> {
    fn write(
        &self,
        command: Command,
        deadline: Instant,
    ) -> BoxFuture<'_, Result<Response, RequestError>> {
        Box::pin(async move {
            self.limits.validate_command(&command)?;
            self.write_routed(command, deadline, true).await
        })
    }

    fn read(
        &self,
        query: Query,
        preference: ReadPreference,
        deadline: Instant,
    ) -> BoxFuture<'_, Result<Response, RequestError>> {
        Box::pin(async move {
            self.limits.validate_query(&query)?;
            self.read_routed(query, preference, deadline, true).await
        })
    }

    fn join(
        &self,
        seeds: Vec<String>,
        deadline: Instant,
    ) -> BoxFuture<'_, Result<(), RequestError>> {
        Box::pin(async move {
            let mut last_error = self.no_leader("no seed address given");
            for seed in seeds.iter().cycle().take(seeds.len() * 8) {
                match self
                    .forwarder
                    .add_member(seed, self.id, &self.addr, remaining(deadline))
                    .await
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
        NodeStatus {
            id: self.id,
            leader,
            members,
            term: metrics.current_term,
            applied_index: metrics.last_applied.map_or(0, |id| id.index),
            is_leader: metrics.state == ServerState::Leader,
        }
    }

    fn wait_applied(
        &self,
        index: u64,
        deadline: Instant,
    ) -> BoxFuture<'_, Result<(), RequestError>> {
        Box::pin(async move {
            self.raft
                .wait(Some(remaining(deadline)))
                .applied_index_at_least(Some(index), "applied")
                .await
                .map(|_| ())
                .map_err(|_| timeout(deadline))
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let _ = self.raft.shutdown().await;
        })
    }
}

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

    fn add_member(&self, id: NodeId, addr: String) -> BoxFuture<'_, Result<(), RequestError>> {
        Box::pin(async move {
            let deadline = Instant::now() + FORWARDED_DEADLINE;
            self.add_member_routed(id, addr, deadline).await
        })
    }
}

/// The longest a forwarded request runs here; the forwarding node's own deadline (sent as the
/// gRPC timeout) usually ends it sooner.
const FORWARDED_DEADLINE: Duration = Duration::from_secs(30);
