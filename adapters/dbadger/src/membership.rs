//! Membership changes: adding a node (as a learner, then, once caught up, as a voter),
//! updating a member's address, promoting, demoting and removing members, and handing
//! leadership to another voter. Each runs on the leader, which decides every step from its own
//! view of the membership (`membership_plan.rs`), and is forwarded there by any other member.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};

use dbadger_core::raft_types::{Node as NodeAddress, NodeId};
use dbadger_core::storage::StateMachineStore;
use dbadger_core::{Outcome, RequestError};
use openraft::async_runtime::watch::WatchReceiver;
use openraft::errors::{ChangeMembershipError, ClientWriteError, ForwardToLeader, RaftError};
use openraft::{ChangeMembers, ServerState};
use tokio::time::Instant;

use crate::membership_plan::{
    AddStep, Departure, Member, MembershipChange, departure, next_add_step, next_address_step,
    transfer_target, unfinished_joint,
};
use crate::node::{Node, Types, remaining, stopped};
use crate::requests::Attempt;
use crate::routing::{LEADER_POLL, RequestKind};

/// Where a membership request stands after one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// One change was made here; look again at what is left.
    Changed,
    /// Nothing is left to change.
    Finished,
    /// Another change is in flight; try again shortly.
    Busy,
    /// The leader did the whole request (it was forwarded).
    Delegated,
}

/// A change that went through ends the request.
fn finished_if_changed(attempt: Attempt<Step>) -> Attempt<Step> {
    match attempt {
        Attempt::Done(Ok(Step::Changed)) => Attempt::Done(Ok(Step::Finished)),
        other => other,
    }
}

/// The leader's view of its membership, copied out of the metrics.
struct MembershipView {
    members: BTreeMap<NodeId, (String, bool)>,
    /// The members whose replication progress holds a matching entry.
    acknowledged: BTreeSet<NodeId>,
    /// The voters of an unfinished joint configuration's new set ([`unfinished_joint`]).
    joint_target: Option<BTreeSet<NodeId>>,
}

impl MembershipView {
    fn member(&self, id: NodeId) -> Option<Member<'_>> {
        self.members.get(&id).map(|(addr, voter)| Member {
            addr,
            voter: *voter,
            acknowledged: self.acknowledged.contains(&id),
        })
    }

    fn ids(&self, voters: bool) -> Vec<NodeId> {
        self.members
            .iter()
            .filter(|(_, (_, voter))| *voter == voters)
            .map(|(id, _)| *id)
            .collect()
    }
}

/// What an add asks of the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AddKind {
    /// Make the node a member (a voter unless `learner_only`), or update its address.
    Member { learner_only: bool },
    /// Only update the address of a node that already is a member.
    AddressOnly,
}

impl<S: StateMachineStore> Node<S> {
    /// Carries out `change` on the leader; forwarded there when `may_forward`.
    pub(crate) async fn change_membership_routed(
        &self,
        change: MembershipChange,
        deadline: Instant,
        may_forward: bool,
    ) -> Result<(), RequestError> {
        match change {
            MembershipChange::Add {
                id,
                addr,
                learner_only,
            } => {
                let kind = AddKind::Member { learner_only };
                self.add_member_routed(id, addr, kind, deadline, may_forward)
                    .await
            }
            MembershipChange::RecordAddress { id, addr } => {
                self.add_member_routed(id, addr, AddKind::AddressOnly, deadline, may_forward)
                    .await
            }
            MembershipChange::Remove(id) => {
                self.depart_routed(id, false, deadline, may_forward).await
            }
            MembershipChange::Demote(id) => {
                self.depart_routed(id, true, deadline, may_forward).await
            }
            MembershipChange::TransferLeadership(to) => {
                self.transfer_leadership_routed(to, deadline, may_forward)
                    .await
            }
        }
    }

    /// This node's view of the membership, if it leads; otherwise openraft's hint of who does.
    fn leader_view(&self) -> Result<MembershipView, ForwardToLeader<Types>> {
        let metrics = self.raft.metrics().borrow_watched().clone();
        let membership = metrics.membership_config.membership();
        if metrics.state != ServerState::Leader {
            let hint = metrics
                .current_leader
                .and_then(|id| membership.get_node(&id).map(|node| (id, node.clone())));
            return Err(match hint {
                Some((id, node)) => ForwardToLeader::new(id, node),
                None => ForwardToLeader::empty(),
            });
        }
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let members = membership
            .nodes()
            .map(|(id, node)| (*id, (node.addr.clone(), voters.contains(id))))
            .collect();
        let acknowledged = metrics
            .replication
            .iter()
            .flatten()
            .filter(|(_, matched)| matched.is_some())
            .map(|(id, _)| *id)
            .collect();
        let joint_target = unfinished_joint(membership.get_joint_config());
        Ok(MembershipView {
            members,
            acknowledged,
            joint_target,
        })
    }

    /// A joint configuration left by an interrupted change is finished (its uniform new set
    /// written) before any other step: decided on a joint view, a request would count a voter
    /// of either set as a voter, and stop there.
    async fn finish_joint(&self, view: &MembershipView) -> Option<Attempt<Step>> {
        let target = view.joint_target.clone()?;
        Some(
            self.change_members(ChangeMembers::ReplaceAllVoters(target), true)
                .await,
        )
    }

    /// Proposes one membership change on this node (the leader).
    async fn change(
        &self,
        change: impl Future<Output = Result<(), RaftError<Types, ClientWriteError<Types>>>>,
    ) -> Attempt<Step> {
        match change.await {
            Ok(()) => Attempt::Done(Ok(Step::Changed)),
            Err(RaftError::Fatal(fatal)) => Attempt::Done(Err(stopped(&fatal, Outcome::Unknown))),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(hint))) => {
                Attempt::NotLeader(hint)
            }
            // One change at a time, and none before a new leader's first entry applies; a
            // learner that vanished meanwhile is seen on the next look.
            Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(
                ChangeMembershipError::InProgress(_) | ChangeMembershipError::LearnerNotFound(_),
            ))) => Attempt::Done(Ok(Step::Busy)),
            Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(
                ChangeMembershipError::EmptyMembership(_),
            ))) => Attempt::Done(Err(RequestError::Refused {
                reason: "the change would leave the cluster without a voter".to_owned(),
            })),
            // Every step is decided again from the membership, so the caller may simply try
            // again through the new leader.
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

    /// Proposes `members` with openraft's `change_membership`; `retain` keeps removed voters
    /// as learners.
    async fn change_members(
        &self,
        members: ChangeMembers<NodeId, NodeAddress>,
        retain: bool,
    ) -> Attempt<Step> {
        self.change(async {
            self.raft
                .change_membership(members, retain)
                .await
                .map(|_| ())
        })
        .await
    }

    /// Waits before looking again at a membership change that found the cluster busy.
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

    /// Runs a membership request step by step until nothing is left to change: each step is
    /// decided by `step` on the leader (this node, or the one `forward` reaches).
    async fn until_finished<Local, LocalFuture, Remote, RemoteFuture>(
        &self,
        deadline: Instant,
        may_forward: bool,
        step: Local,
        forward: Remote,
    ) -> Result<(), RequestError>
    where
        Local: Fn() -> LocalFuture,
        LocalFuture: Future<Output = Attempt<Step>>,
        Remote: Fn(String) -> RemoteFuture,
        RemoteFuture: Future<Output = Result<(), dbadger_grpc::ForwardError>>,
    {
        loop {
            let remote = |leader_addr: String| {
                let forwarded = forward(leader_addr);
                async move { forwarded.await.map(|()| Step::Delegated) }
            };
            match self
                .routed(
                    deadline,
                    RequestKind::Membership,
                    may_forward,
                    &step,
                    remote,
                )
                .await?
            {
                Step::Changed => {}
                Step::Busy => self.wait_not_busy(deadline).await?,
                Step::Finished | Step::Delegated => return Ok(()),
            }
        }
    }

    /// Adds node `id` at `addr` (empty: an existing member at its recorded address) as a
    /// learner, then, unless `learner_only`, makes it a voter once it has caught up. A member at
    /// another address has its address updated, as the request's first change only (a newer
    /// address recorded while the request runs stands). Asking again changes nothing.
    async fn add_member_routed(
        &self,
        id: NodeId,
        addr: String,
        kind: AddKind,
        deadline: Instant,
        may_forward: bool,
    ) -> Result<(), RequestError> {
        // Whether this request has changed the membership yet (see `next_add_step`).
        let changed = AtomicBool::new(false);
        let step = || async {
            let view = match self.leader_view() {
                Ok(view) => view,
                Err(hint) => return Attempt::NotLeader(hint),
            };
            if let Some(finishing) = self.finish_joint(&view).await {
                return finishing;
            }
            let node = || NodeAddress { addr: addr.clone() };
            let planned = match kind {
                AddKind::Member { learner_only } => {
                    let changed_already = changed.load(Ordering::SeqCst);
                    next_add_step(id, view.member(id), &addr, learner_only, changed_already)
                }
                AddKind::AddressOnly => next_address_step(id, view.member(id), &addr),
            };
            let outcome = match planned {
                Err(refused) => Attempt::Done(Err(refused)),
                Ok(AddStep::Nothing) => Attempt::Done(Ok(Step::Finished)),
                Ok(AddStep::UpdateAddress) => {
                    self.change_members(
                        ChangeMembers::SetNodes(BTreeMap::from([(id, node())])),
                        false,
                    )
                    .await
                }
                Ok(AddStep::AddLearner) => {
                    self.change(async {
                        self.raft.add_learner(id, node(), false).await.map(|_| ())
                    })
                    .await
                }
                Ok(AddStep::Promote) => match self.await_caught_up(id, deadline).await {
                    Err(error) => Attempt::Done(Err(error)),
                    Ok(()) => {
                        self.change_members(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
                            .await
                    }
                },
            };
            if matches!(outcome, Attempt::Done(Ok(Step::Changed))) {
                changed.store(true, Ordering::SeqCst);
            }
            outcome
        };
        let forward = |leader_addr: String| {
            let addr = addr.clone();
            async move {
                match kind {
                    AddKind::Member { learner_only } => {
                        self.forwarder
                            .add_member(&leader_addr, id, &addr, learner_only, remaining(deadline))
                            .await
                    }
                    AddKind::AddressOnly => {
                        self.forwarder
                            .record_address(&leader_addr, id, &addr, remaining(deadline))
                            .await
                    }
                }
            }
        };
        self.until_finished(deadline, may_forward, step, forward)
            .await
    }

    /// Removes node `id` from the cluster (voter or learner), or, when `demote`, takes its
    /// vote away and keeps it as a learner. A leader asked to remove or demote itself hands
    /// leadership to another voter first and passes the request on.
    async fn depart_routed(
        &self,
        id: NodeId,
        demote: bool,
        deadline: Instant,
        may_forward: bool,
    ) -> Result<(), RequestError> {
        let step = || async move {
            let view = match self.leader_view() {
                Ok(view) => view,
                Err(hint) => return Attempt::NotLeader(hint),
            };
            if let Some(finishing) = self.finish_joint(&view).await {
                return finishing;
            }
            let voters = view.ids(true);
            match departure(id, self.id, view.member(id), voters.len(), demote) {
                Err(refused) => Attempt::Done(Err(refused)),
                Ok(Departure::Nothing) => Attempt::Done(Ok(Step::Finished)),
                // Once removed, the node is not a member, which a second look would report
                // as unknown: a removal that went through is the end of the request.
                Ok(Departure::RemoveLearner) => finished_if_changed(
                    self.change_members(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false)
                        .await,
                ),
                Ok(Departure::RemoveVoter) => finished_if_changed(
                    self.change_members(ChangeMembers::RemoveVoters(BTreeSet::from([id])), demote)
                        .await,
                ),
                Ok(Departure::TransferFirst) => {
                    match self.transfer_here(None, &view, deadline).await {
                        // Led by another now: the next step forwards the request to it.
                        Ok(()) => Attempt::Done(Ok(Step::Changed)),
                        Err(error) => Attempt::Done(Err(error)),
                    }
                }
            }
        };
        let forward = |leader_addr: String| async move {
            if demote {
                self.forwarder
                    .demote_member(&leader_addr, id, remaining(deadline))
                    .await
            } else {
                self.forwarder
                    .remove_member(&leader_addr, id, remaining(deadline))
                    .await
            }
        };
        self.until_finished(deadline, may_forward, step, forward)
            .await
    }

    /// Hands leadership to voter `to` (`None`: the voter whose log reaches furthest) and waits
    /// until this node sees it lead. Runs on the leader; forwarded there when `may_forward`.
    async fn transfer_leadership_routed(
        &self,
        to: Option<NodeId>,
        deadline: Instant,
        may_forward: bool,
    ) -> Result<(), RequestError> {
        let step = || async move {
            let view = match self.leader_view() {
                Ok(view) => view,
                Err(hint) => {
                    // Asked to lead, and leading already (seen from a follower's side).
                    if to.is_some() && hint.leader_id == to {
                        return Attempt::Done(Ok(Step::Finished));
                    }
                    return Attempt::NotLeader(hint);
                }
            };
            if to == Some(self.id) {
                return Attempt::Done(Ok(Step::Finished));
            }
            Attempt::Done(
                self.transfer_here(to, &view, deadline)
                    .await
                    .map(|()| Step::Finished),
            )
        };
        let forward = |leader_addr: String| async move {
            self.forwarder
                .transfer_leadership(&leader_addr, to, remaining(deadline))
                .await
        };
        self.until_finished(deadline, may_forward, step, forward)
            .await
    }

    /// On the leader: hands leadership to `to` (or the best placed voter) and waits until
    /// another node leads.
    async fn transfer_here(
        &self,
        to: Option<NodeId>,
        view: &MembershipView,
        deadline: Instant,
    ) -> Result<(), RequestError> {
        let progress: Vec<(NodeId, Option<u64>)> = self
            .raft
            .metrics()
            .borrow_watched()
            .replication
            .as_ref()
            .map(|progress| {
                progress
                    .iter()
                    .map(|(id, matched)| (*id, matched.as_ref().map(|log_id| log_id.index)))
                    .collect()
            })
            .unwrap_or_default();
        let target = transfer_target(self.id, to, &view.ids(true), &view.ids(false), &progress)?;
        self.raft
            .trigger()
            .transfer_leader(target)
            .await
            .map_err(|fatal| stopped(&fatal, Outcome::NotApplied))?;
        let me = self.id;
        self.raft
            .wait(Some(remaining(deadline)))
            .metrics(
                move |metrics| metrics.current_leader.is_some_and(|leader| leader != me),
                "another node leads",
            )
            .await
            .map(|_| ())
            .map_err(|_| {
                RequestError::unavailable(
                    format!("node {target} did not take over the leadership in time"),
                    Outcome::Unknown,
                )
            })
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
