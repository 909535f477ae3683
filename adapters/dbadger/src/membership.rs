//! Membership changes: adding a node (as a learner, then, once caught up, as a voter) and
//! removing one, each run on the leader and forwarded there by any other member.

use std::collections::BTreeSet;

use dbadger_core::raft_types::{Node as NodeAddress, NodeId};
use dbadger_core::storage::StateMachineStore;
use dbadger_core::{Outcome, RequestError};
use openraft::async_runtime::watch::WatchReceiver;
use openraft::errors::{ClientWriteError, RaftError};
use openraft::{ChangeMembers, ServerState};
use tokio::time::Instant;

use crate::node::{Engine, Node, Types, remaining, stopped};
use crate::requests::Attempt;
use crate::routing::{LEADER_POLL, RequestKind};

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

impl<S: StateMachineStore> Node<S> {
    /// One membership change on this node: done, refused because another change is in flight
    /// (openraft allows one at a time, and none before a new leader's first entry applies), or
    /// not possible here because another node leads.
    async fn membership_step(
        &self,
        change: impl Future<Output = Result<(), RaftError<Types, ClientWriteError<Types>>>>,
    ) -> Attempt<MembershipStep> {
        match change.await {
            Ok(()) => Attempt::Done(Ok(MembershipStep::Done)),
            Err(RaftError::Fatal(fatal)) => Attempt::Done(Err(stopped(&fatal, Outcome::Unknown))),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(hint))) => {
                Attempt::NotLeader(hint)
            }
            Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(_))) => {
                Attempt::Done(Ok(MembershipStep::Busy))
            }
            // Membership steps are idempotent (re-adding a member or voter changes nothing), so
            // the caller may simply try again through the new leader.
            Err(RaftError::APIError(ClientWriteError::LogEntryDiscarded(_))) => {
                Attempt::Done(Err(RequestError::unavailable(
                    "leadership changed during the membership change; retry it",
                    Outcome::Unknown,
                )))
            }
            Err(RaftError::APIError(other)) => {
                Attempt::Done(Err(RequestError::Internal(other.to_string())))
            }
        }
    }

    /// Waits before retrying a membership step that found the cluster busy.
    async fn wait_not_busy(&self, deadline: Instant) -> Result<(), RequestError> {
        if remaining(deadline) <= LEADER_POLL {
            return Err(RequestError::unavailable(
                "the cluster stayed busy with another membership change",
                Outcome::NotApplied,
            ));
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
        may_forward: bool,
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
        self.routed(
            deadline,
            RequestKind::Membership,
            may_forward,
            local,
            remote,
        )
        .await
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
        self.routed(deadline, RequestKind::Membership, false, local, |_| async {
            Ok(MembershipStep::Delegated)
        })
        .await
    }

    /// Adds `id` as a learner, waits for it to catch up, then makes it a voter. Runs on the
    /// leader; a follower forwards the whole request when `may_forward`.
    pub(crate) async fn add_member_routed(
        &self,
        id: NodeId,
        addr: String,
        learner_only: bool,
        deadline: Instant,
        may_forward: bool,
    ) -> Result<(), RequestError> {
        let node = NodeAddress { addr };
        loop {
            match self
                .add_learner_once(id, &node, learner_only, deadline, may_forward)
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

    /// Removes `id` from the cluster (voter or learner). Runs on the leader, which answers
    /// [`RequestError::UnknownMember`] when `id` is not a member; a follower forwards it when
    /// `may_forward`.
    pub(crate) async fn remove_member_routed(
        &self,
        id: NodeId,
        deadline: Instant,
        may_forward: bool,
    ) -> Result<(), RequestError> {
        loop {
            let local = || async move {
                let members = Engine::status(self).members;
                let Some((_, _, is_voter)) = members.iter().find(|(member, _, _)| *member == id)
                else {
                    if self.leads() {
                        return Attempt::Done(Err(RequestError::UnknownMember { id }));
                    }
                    // A follower's view may be behind: let the leader decide.
                    return self
                        .membership_step(async {
                            self.raft
                                .change_membership(
                                    ChangeMembers::RemoveNodes(BTreeSet::from([id])),
                                    false,
                                )
                                .await
                                .map(|_| ())
                        })
                        .await;
                };
                let change = if *is_voter {
                    ChangeMembers::RemoveVoters(BTreeSet::from([id]))
                } else {
                    ChangeMembers::RemoveNodes(BTreeSet::from([id]))
                };
                self.membership_step(async move {
                    self.raft.change_membership(change, false).await.map(|_| ())
                })
                .await
            };
            let remote = |leader_addr: String| async move {
                self.forwarder
                    .remove_member(&leader_addr, id, remaining(deadline))
                    .await
                    .map(|()| MembershipStep::Delegated)
            };
            match self
                .routed(
                    deadline,
                    RequestKind::Membership,
                    may_forward,
                    local,
                    remote,
                )
                .await?
            {
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
            Ok(_) => Err(RequestError::unavailable(
                format!(
                    "leadership changed while node {id} caught up; it is a learner until the \
                     join is retried"
                ),
                Outcome::Unknown,
            )),
            Err(_) => Err(RequestError::unavailable(
                format!("node {id} did not catch up before the deadline; it is a learner only"),
                Outcome::Unknown,
            )),
        }
    }
}
