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
use dbadger_grpc::{ClusterHandler, ForwardError, ForwardHandler, Forwarder, KvHandler};
use dbadger_proto::v1;
use futures_util::future::BoxFuture;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::errors::{ClientWriteError, ForwardToLeader, LinearizableReadError, RaftError};
use openraft::{ChangeMembers, Raft, ReadPolicy, ServerState};
use tokio::time::Instant;

use crate::metrics::Metrics;
use crate::runtime::Runtime;

type Types = RaftTypes<Runtime>;

/// How long a request waits between retries while the cluster changes leader or membership.
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
    /// The last log index this node knows to be committed.
    pub committed_index: u64,
    /// The index of the last entry applied here.
    pub applied_index: u64,
    /// The index of the last entry in this node's log.
    pub last_log_index: u64,
    /// The last index covered by this node's current snapshot (0 for none).
    pub snapshot_index: u64,
    /// The last index removed from this node's log (0 for none).
    pub purged_index: u64,
    /// Whether this node leads.
    pub is_leader: bool,
    /// The server state: "leader", "follower", "candidate", "learner" or "shutdown".
    pub state: &'static str,
}

impl NodeStatus {
    /// Whether the node can serve: it knows a leader and has applied everything it knows to
    /// be committed.
    pub fn is_ready(&self) -> bool {
        self.leader.is_some() && self.applied_index >= self.committed_index
    }
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
    pub(crate) metrics: Arc<Metrics>,
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// The request's deadline passed. Whoever set the deadline (`Db`, or the Kv service for a
/// client's request) fills in its length with `RequestError::with_deadline`.
fn timeout() -> RequestError {
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

/// Where a membership change stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MembershipStep {
    /// Done on this node.
    Done,
    /// Another change is in flight; try again shortly.
    Busy,
    /// The leader did it (the request was forwarded).
    Delegated,
}

/// The outcome of trying a request on this node.
enum Attempt<T> {
    Done(Result<T, RequestError>),
    /// This node does not lead; openraft's hint says who might.
    NotLeader(ForwardToLeader<Types>),
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

    /// Waits a little for the leader to be someone other than `stale` (any leader, for
    /// `None`); false once the deadline is too near to try again.
    async fn await_leader_change(&self, stale: Option<NodeId>, deadline: Instant) -> bool {
        let wait = remaining(deadline).min(LEADER_POLL * 10);
        if wait < LEADER_POLL {
            return false;
        }
        let _ = self
            .raft
            .wait(Some(wait))
            .metrics(
                move |metrics| metrics.current_leader.is_some() && metrics.current_leader != stale,
                "a new leader is known",
            )
            .await;
        remaining(deadline) > Duration::ZERO
    }

    /// Why a request ran out of time: no leader, or a leader that has not heard from a quorum
    /// lately, is `Unavailable` (retry elsewhere or later); otherwise the deadline was simply
    /// too short.
    fn deadline_error(&self) -> RequestError {
        let metrics = self.raft.metrics().borrow_watched().clone();
        let quorum_window = Duration::from_millis(self.raft.config().election_timeout_max);
        let quorum_recent = metrics
            .last_quorum_acked
            .as_ref()
            .is_some_and(|acked| openraft::Instant::elapsed(&**acked) < quorum_window);
        match (metrics.current_leader, metrics.state) {
            (None, _) => self.no_leader("no leader elected before the deadline"),
            (Some(_), ServerState::Leader) if !quorum_recent => {
                self.no_leader("the leader cannot reach a quorum; the write may or may not apply")
            }
            _ => timeout(),
        }
    }

    /// Runs `local` on this node; when it does not lead, runs `remote` against the leader
    /// (if `forward`), retrying across leader changes until the deadline.
    ///
    /// A request that is not `idempotent` (a write) is sent again after a failed forward only
    /// when the other node certainly did not propose it: the connection was refused, or it
    /// answered that it does not lead and named another leader. Any other failure (lost
    /// connection, discarded entry, no quorum) may come after the write was proposed, and a
    /// second proposal could apply it twice (a compare-and-set would then report failure for a
    /// change it made): the caller gets `Unavailable` saying the write may or may not have
    /// applied. (Found by the simulator.)
    async fn routed<T, LocalFuture, RemoteFuture>(
        &self,
        deadline: Instant,
        forward: bool,
        idempotent: bool,
        local: impl Fn() -> LocalFuture,
        remote: impl Fn(String) -> RemoteFuture,
    ) -> Result<T, RequestError>
    where
        LocalFuture: Future<Output = Attempt<T>>,
        RemoteFuture: Future<Output = Result<T, ForwardError>>,
    {
        loop {
            let hint = match tokio::time::timeout(remaining(deadline), local()).await {
                Err(_) => return Err(self.deadline_error()),
                Ok(Attempt::Done(result)) => return result,
                Ok(Attempt::NotLeader(hint)) => hint,
            };
            match self.route(&hint) {
                Route::Forward(leader, addr) if forward => match remote(addr.clone()).await {
                    Ok(value) => return Ok(value),
                    Err(ForwardError {
                        error: error @ RequestError::Timeout { .. },
                        ..
                    }) => return Err(error),
                    Err(failure)
                        if !idempotent
                            && failure.may_have_arrived
                            && !redirected(&failure.error, leader) =>
                    {
                        return Err(maybe_applied(failure.error));
                    }
                    Err(ForwardError { error, .. }) if error.is_retryable() => {
                        if !self.await_leader_change(Some(leader), deadline).await {
                            return Err(with_leader_hint(error, leader, &addr));
                        }
                    }
                    Err(ForwardError { error, .. }) => return Err(error),
                },
                Route::Forward(leader, addr) => {
                    return Err(RequestError::Unavailable {
                        reason: "not the leader".to_owned(),
                        leader: Some((leader, addr)),
                    });
                }
                Route::NoLeader => {
                    // The hint may name no leader while the metrics already know one, or a
                    // leader this node cannot use (itself while it steps down, one missing from
                    // its membership): pause before retrying, so that the retry is never a
                    // busy loop.
                    tokio::time::sleep(LEADER_POLL.min(remaining(deadline))).await;
                    if !self.await_leader_change(hint.leader_id, deadline).await {
                        return Err(self.no_leader("no leader elected"));
                    }
                }
            }
        }
    }

    /// Proposes a write; a follower passes it to the leader when `forward`.
    async fn write_routed(
        &self,
        command: Command,
        deadline: Instant,
        forward: bool,
    ) -> Result<Response, RequestError> {
        let local = || async {
            match self.raft.client_write(command.clone()).await {
                Ok(written) => Attempt::Done(Ok(written.data)),
                Err(RaftError::Fatal(_)) => Attempt::Done(Err(RequestError::ShuttingDown)),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(hint))) => {
                    Attempt::NotLeader(hint)
                }
                Err(RaftError::APIError(ClientWriteError::LogEntryDiscarded(_))) => Attempt::Done(
                    Err(self.no_leader("leadership changed; the write may or may not have applied")),
                ),
                Err(RaftError::APIError(other)) => {
                    Attempt::Done(Err(RequestError::Internal(other.to_string())))
                }
            }
        };
        let remote = |addr: String| {
            let command = &command;
            async move {
                self.forwarder
                    .write(&addr, command, remaining(deadline))
                    .await
            }
        };
        self.routed(deadline, forward, false, local, remote).await
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
        let local = || async {
            match self.raft.ensure_linearizable(ReadPolicy::ReadIndex).await {
                Ok(_) => Attempt::Done(self.read_local(&query)),
                Err(RaftError::Fatal(_)) => Attempt::Done(Err(RequestError::ShuttingDown)),
                Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(hint))) => {
                    Attempt::NotLeader(hint)
                }
                Err(RaftError::APIError(LinearizableReadError::QuorumNotEnough(error))) => {
                    Attempt::Done(Err(
                        self.no_leader(&format!("leader cannot reach a quorum: {error}"))
                    ))
                }
            }
        };
        let remote = |addr: String| {
            let query = &query;
            async move {
                self.forwarder
                    .linearizable_read(&addr, query, remaining(deadline))
                    .await
            }
        };
        self.routed(deadline, forward, true, local, remote).await
    }

    fn read_local(&self, query: &Query) -> Result<Response, RequestError> {
        let view = self.store.read().map_err(storage_error)?;
        rules::read(query, &view, &self.limits).map_err(storage_error)
    }

    /// One membership change on this node: done, refused because another change is in flight
    /// (openraft allows one at a time, and none before a new leader's first entry applies), or
    /// not possible here because another node leads.
    async fn membership_step(
        &self,
        change: impl Future<Output = Result<(), RaftError<Types, ClientWriteError<Types>>>>,
    ) -> Attempt<MembershipStep> {
        match change.await {
            Ok(()) => Attempt::Done(Ok(MembershipStep::Done)),
            Err(RaftError::Fatal(_)) => Attempt::Done(Err(RequestError::ShuttingDown)),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(hint))) => {
                Attempt::NotLeader(hint)
            }
            Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(_))) => {
                Attempt::Done(Ok(MembershipStep::Busy))
            }
            // Membership steps are idempotent (re-adding a member or voter changes nothing), so
            // the caller may simply try again through the new leader.
            Err(RaftError::APIError(ClientWriteError::LogEntryDiscarded(_))) => Attempt::Done(Err(
                self.no_leader("leadership changed during the membership change; retry it"),
            )),
            Err(RaftError::APIError(other)) => {
                Attempt::Done(Err(RequestError::Internal(other.to_string())))
            }
        }
    }

    /// Waits before retrying a membership step that found the cluster busy.
    async fn wait_not_busy(&self, deadline: Instant) -> Result<(), RequestError> {
        if remaining(deadline) <= LEADER_POLL {
            return Err(self.no_leader("the cluster stayed busy with another membership change"));
        }
        tokio::time::sleep(LEADER_POLL).await;
        Ok(())
    }

    async fn add_learner_once(
        &self,
        id: NodeId,
        node: &NodeAddress,
        learner_only: bool,
        deadline: Instant,
        forward: bool,
    ) -> Result<MembershipStep, RequestError> {
        let local = || {
            self.membership_step(async {
                self.raft
                    .add_learner(id, node.clone(), true)
                    .await
                    .map(|_| ())
            })
        };
        let remote = |leader_addr: String| async move {
            self.forwarder
                .add_member(
                    &leader_addr,
                    id,
                    &node.addr,
                    learner_only,
                    remaining(deadline),
                )
                .await
                .map(|()| MembershipStep::Delegated)
        };
        self.routed(deadline, forward, true, local, remote).await
    }

    async fn promote_once(
        &self,
        id: NodeId,
        deadline: Instant,
    ) -> Result<MembershipStep, RequestError> {
        let local = || {
            self.membership_step(async {
                self.raft
                    .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
                    .await
                    .map(|_| ())
            })
        };
        self.routed(deadline, false, true, local, |_| async {
            Ok(MembershipStep::Delegated)
        })
        .await
    }

    /// Adds `id` as a learner, waits for it to catch up, then makes it a voter. Runs on the
    /// leader; a follower forwards the whole request when `forward`.
    async fn add_member_routed(
        &self,
        id: NodeId,
        addr: String,
        learner_only: bool,
        deadline: Instant,
        forward: bool,
    ) -> Result<(), RequestError> {
        let node = NodeAddress { addr };
        loop {
            match self
                .add_learner_once(id, &node, learner_only, deadline, forward)
                .await?
            {
                MembershipStep::Delegated => return Ok(()),
                MembershipStep::Done => break,
                MembershipStep::Busy => self.wait_not_busy(deadline).await?,
            }
        }
        if learner_only {
            return Ok(());
        }
        self.await_caught_up(id, deadline).await?;
        loop {
            match self.promote_once(id, deadline).await? {
                MembershipStep::Busy => self.wait_not_busy(deadline).await?,
                MembershipStep::Done | MembershipStep::Delegated => return Ok(()),
            }
        }
    }

    /// Removes `id` from the cluster (voter or learner). Runs on the leader; a follower
    /// forwards it when `forward`.
    async fn remove_member_routed(
        &self,
        id: NodeId,
        deadline: Instant,
        forward: bool,
    ) -> Result<(), RequestError> {
        loop {
            let is_voter = Engine::status(self)
                .members
                .iter()
                .any(|(member, _, voter)| *member == id && *voter);
            let change = if is_voter {
                ChangeMembers::RemoveVoters(BTreeSet::from([id]))
            } else {
                ChangeMembers::RemoveNodes(BTreeSet::from([id]))
            };
            let local = || {
                let change = change.clone();
                self.membership_step(async move {
                    self.raft.change_membership(change, false).await.map(|_| ())
                })
            };
            let remote = |leader_addr: String| async move {
                self.forwarder
                    .remove_member(&leader_addr, id, remaining(deadline))
                    .await
                    .map(|()| MembershipStep::Delegated)
            };
            match self.routed(deadline, forward, true, local, remote).await? {
                MembershipStep::Busy => self.wait_not_busy(deadline).await?,
                MembershipStep::Done | MembershipStep::Delegated => return Ok(()),
            }
        }
    }

    /// Waits until learner `id` holds this leader's log as it was on entry, so promoting it
    /// cannot stall the cluster on an unreachable or lagging node. Ends early, with a retryable
    /// error, when this node stops leading: only a leader sees replication progress, and the
    /// joiner should go on with the new leader rather than wait out its deadline.
    async fn await_caught_up(&self, id: NodeId, deadline: Instant) -> Result<(), RequestError> {
        let target = self.raft.metrics().borrow_watched().last_log_index;
        let settled = self
            .raft
            .wait(Some(remaining(deadline)))
            .metrics(
                move |metrics| {
                    metrics.state != ServerState::Leader
                        || metrics
                            .replication
                            .as_ref()
                            .and_then(|progress| progress.get(&id).cloned().flatten())
                            .map(|matched| matched.index)
                            >= target
                },
                "the new member caught up or this node stopped leading",
            )
            .await;
        match settled {
            Ok(metrics) if metrics.state == ServerState::Leader => Ok(()),
            Ok(_) => Err(self.no_leader(&format!(
                "leadership changed while node {id} caught up; it is a learner until the join is retried"
            ))),
            Err(_) => Err(RequestError::Unavailable {
                reason: format!("node {id} did not catch up before the deadline; it is reachable as a learner only"),
                leader: None,
            }),
        }
    }
}

/// Whether a forwarded request came back from a node that does not lead and named another
/// leader: it did not propose the request.
fn redirected(error: &RequestError, tried: NodeId) -> bool {
    matches!(
        error,
        RequestError::Unavailable {
            leader: Some((leader, _)),
            ..
        } if *leader != tried
    )
}

/// A forwarded write failed after it may have been proposed.
fn maybe_applied(error: RequestError) -> RequestError {
    match error {
        RequestError::Unavailable { reason, leader } => RequestError::Unavailable {
            reason: format!("the write may or may not have applied: {reason}"),
            leader,
        },
        other => other,
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
            let mut last_error = self.no_leader("no seed address given");
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
        NodeStatus {
            id: self.id,
            leader,
            members,
            term: metrics.current_term,
            committed_index: metrics.local_committed.map_or(0, |id| id.index),
            applied_index: metrics.last_applied.map_or(0, |id| id.index),
            last_log_index: metrics.last_log_index.unwrap_or(0),
            snapshot_index: metrics.snapshot.map_or(0, |id| id.index),
            purged_index: metrics.purged.map_or(0, |id| id.index),
            is_leader: metrics.state == ServerState::Leader,
            state: match metrics.state {
                ServerState::Leader => "leader",
                ServerState::Follower => "follower",
                ServerState::Candidate => "candidate",
                ServerState::Learner => "learner",
                ServerState::Shutdown => "shutdown",
            },
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
                .map_err(|_| timeout())
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
/// the embedded API, within the client's deadline when it sent one (capped at this node's).
impl<S: StateMachineStore> KvHandler for Node<S> {
    fn write(
        &self,
        command: Command,
        timeout: Option<Duration>,
    ) -> BoxFuture<'_, Result<Response, RequestError>> {
        let budget = self.budget(timeout);
        let written = Engine::write(self, command, Instant::now() + budget);
        Box::pin(async move { written.await.map_err(|error| error.with_deadline(budget)) })
    }

    fn read(
        &self,
        query: Query,
        preference: ReadPreference,
        timeout: Option<Duration>,
    ) -> BoxFuture<'_, Result<Response, RequestError>> {
        let budget = self.budget(timeout);
        let read = Engine::read(self, query, preference, Instant::now() + budget);
        Box::pin(async move { read.await.map_err(|error| error.with_deadline(budget)) })
    }
}

impl<S: StateMachineStore> Node<S> {
    /// How long a client request may take: the client's deadline, never more than the node's.
    fn budget(&self, client_timeout: Option<Duration>) -> Duration {
        client_timeout.map_or(self.request_timeout, |timeout| {
            timeout.min(self.request_timeout)
        })
    }
}

/// The longest a forwarded request runs here; the forwarding node's own deadline (sent as the
/// gRPC timeout) usually ends it sooner.
const FORWARDED_DEADLINE: Duration = Duration::from_secs(30);
