//! What a membership request must change, decided from the leader's view of the membership:
//! pure functions, so that every request is idempotent (asking twice changes nothing the
//! second time) and every refusal is decided in one place.

use std::collections::BTreeSet;

use dbadger_core::RequestError;
use dbadger_core::raft_types::NodeId;

/// A membership request, as the node's callers make it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum MembershipChange {
    /// Add node `id` at `addr` (empty: an existing member's address) as a voter, or as a
    /// learner when `learner_only`; update its address if it is a member elsewhere.
    Add {
        id: NodeId,
        addr: String,
        learner_only: bool,
    },
    /// Record that member `id` is now reached at `addr`, its role unchanged; refused if it is
    /// not a member (never adds it).
    RecordAddress { id: NodeId, addr: String },
    /// Remove node `id`.
    Remove(NodeId),
    /// Take node `id`'s vote away; it stays as a learner.
    Demote(NodeId),
    /// Hand leadership to voter `to` (`None`: the best placed voter).
    TransferLeadership(Option<NodeId>),
}

/// The voters a joint configuration was heading to, if `configs` is one (more than one
/// config): the change that made it was interrupted before its second step (its caller gave
/// up, or leadership changed), and until the uniform configuration of those voters is written
/// every decision needs a majority of both sets. `None` for a uniform configuration.
pub(crate) fn unfinished_joint(configs: &[BTreeSet<NodeId>]) -> Option<BTreeSet<NodeId>> {
    match configs {
        [_, .., last] => Some(last.clone()),
        _ => None,
    }
}

/// A member as the leader sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Member<'a> {
    /// Where it is reached.
    pub(crate) addr: &'a str,
    /// Whether it votes.
    pub(crate) voter: bool,
    /// Whether it has acknowledged an entry of this leader's log (its replication progress
    /// holds a matching entry): it runs, and heard from the leader at its recorded address.
    pub(crate) acknowledged: bool,
}

/// The next step of adding a node (or of promoting a learner).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AddStep {
    /// The node already is what was asked for: nothing to write.
    Nothing,
    /// The node is a member at another address: record the new one first.
    UpdateAddress,
    /// The node is not a member: add it as a learner.
    AddLearner,
    /// The node is a learner that should vote: promote it once it has caught up.
    Promote,
}

/// The next step of adding node `id` at `addr` (empty: keep the member's address) as a voter,
/// or as a learner when `learner_only`. `changed_already`: this request has changed the
/// membership before. Recording the request's address is only ever its first change: once it
/// has added (or moved) the member, another address there was recorded since by a newer
/// request (the node restarted elsewhere and said so), and a stale add must not move it back.
/// Nor does an add move a member that has acknowledged entries at its recorded address: the
/// add may be a retry, by a member forwarding it, of the join of a process that has since
/// moved and announced its new address; a running node's address changes by its own
/// announcement ([`next_address_step`]).
pub(crate) fn next_add_step(
    id: NodeId,
    existing: Option<Member<'_>>,
    addr: &str,
    learner_only: bool,
    changed_already: bool,
) -> Result<AddStep, RequestError> {
    let Some(member) = existing else {
        if addr.is_empty() {
            return Err(RequestError::UnknownMember { id });
        }
        return Ok(AddStep::AddLearner);
    };
    if !addr.is_empty() && member.addr != addr && !changed_already && !member.acknowledged {
        return Ok(AddStep::UpdateAddress);
    }
    match (member.voter, learner_only) {
        (true, false) | (false, true) => Ok(AddStep::Nothing),
        (false, false) => Ok(AddStep::Promote),
        (true, true) => Err(RequestError::Refused {
            reason: format!("node {id} is a voter; demote it to make it a learner"),
        }),
    }
}

/// The next step of recording member `id`'s new address `addr`: only a member's address
/// changes; a node that is not a member is not added.
pub(crate) fn next_address_step(
    id: NodeId,
    existing: Option<Member<'_>>,
    addr: &str,
) -> Result<AddStep, RequestError> {
    match existing {
        None => Err(RequestError::UnknownMember { id }),
        Some(member) if !addr.is_empty() && member.addr != addr => Ok(AddStep::UpdateAddress),
        Some(_) => Ok(AddStep::Nothing),
    }
}

/// What removing or demoting a member changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Departure {
    /// Nothing: the node already is what was asked for.
    Nothing,
    /// Take away its vote (it stays a learner, when demoting) or remove it entirely.
    RemoveVoter,
    /// Remove a learner.
    RemoveLearner,
    /// This node leads and is the one leaving or being demoted: hand leadership to another
    /// voter first, then ask the new leader. (A leader that demotes itself would go on leading
    /// as a learner.)
    TransferFirst,
}

/// What removing (`demote == false`) or demoting node `id` takes, on leader `me` whose
/// membership has `voters` voters.
pub(crate) fn departure(
    id: NodeId,
    me: NodeId,
    existing: Option<Member<'_>>,
    voters: usize,
    demote: bool,
) -> Result<Departure, RequestError> {
    let Some(member) = existing else {
        return Err(RequestError::UnknownMember { id });
    };
    if !member.voter {
        return Ok(if demote {
            Departure::Nothing
        } else {
            Departure::RemoveLearner
        });
    }
    if voters <= 1 {
        let change = if demote { "demoted" } else { "removed" };
        return Err(RequestError::Refused {
            reason: format!("node {id} is the last voter and cannot be {change}"),
        });
    }
    if id == me {
        return Ok(Departure::TransferFirst);
    }
    Ok(Departure::RemoveVoter)
}

/// The voter to hand leadership to: `wanted` if given (it must be a voter other than `me`),
/// otherwise the voter whose replicated log reaches furthest (the one that can take over
/// soonest), the lowest id among equals. `progress` lists each voter other than `me` with the
/// last log index it is known to hold.
pub(crate) fn transfer_target(
    me: NodeId,
    wanted: Option<NodeId>,
    voters: &[NodeId],
    learners: &[NodeId],
    progress: &[(NodeId, Option<u64>)],
) -> Result<NodeId, RequestError> {
    if let Some(id) = wanted {
        if voters.contains(&id) {
            return Ok(id);
        }
        if learners.contains(&id) {
            return Err(RequestError::Refused {
                reason: format!("node {id} is a learner and cannot lead"),
            });
        }
        return Err(RequestError::UnknownMember { id });
    }
    let best = progress
        .iter()
        .filter(|(id, _)| *id != me && voters.contains(id))
        .max_by(|(a_id, a_index), (b_id, b_index)| a_index.cmp(b_index).then(b_id.cmp(a_id)));
    match best {
        Some((id, _)) => Ok(*id),
        None => Err(RequestError::Refused {
            reason: format!("node {me} is the only voter; there is no one to lead instead"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voter(addr: &str) -> Option<Member<'_>> {
        Some(Member {
            addr,
            voter: true,
            acknowledged: false,
        })
    }

    fn learner(addr: &str) -> Option<Member<'_>> {
        Some(Member {
            addr,
            voter: false,
            acknowledged: false,
        })
    }

    fn heard_from(member: Option<Member<'_>>) -> Option<Member<'_>> {
        member.map(|member| Member {
            acknowledged: true,
            ..member
        })
    }

    #[test]
    fn an_add_does_not_move_a_member_that_acknowledged_entries() {
        assert_eq!(
            next_add_step(2, heard_from(learner("b:2")), "b:1", false, false),
            Ok(AddStep::Promote)
        );
        assert_eq!(
            next_add_step(2, heard_from(voter("b:2")), "b:1", false, false),
            Ok(AddStep::Nothing)
        );
        assert_eq!(
            next_add_step(2, heard_from(learner("b:2")), "b:1", true, false),
            Ok(AddStep::Nothing)
        );
        assert_eq!(
            next_address_step(2, heard_from(voter("b:2")), "b:1"),
            Ok(AddStep::UpdateAddress)
        );
    }

    #[test]
    fn recording_an_address_changes_only_a_members_address() {
        assert_eq!(
            next_address_step(4, None, "d:2"),
            Err(RequestError::UnknownMember { id: 4 })
        );
        assert_eq!(
            next_address_step(4, learner("d:1"), "d:2"),
            Ok(AddStep::UpdateAddress)
        );
        assert_eq!(
            next_address_step(4, voter("d:1"), "d:2"),
            Ok(AddStep::UpdateAddress)
        );
        assert_eq!(
            next_address_step(4, learner("d:2"), "d:2"),
            Ok(AddStep::Nothing)
        );
        assert_eq!(next_address_step(4, voter("d:1"), ""), Ok(AddStep::Nothing));
    }

    #[test]
    fn adding_is_idempotent_and_updates_addresses() {
        assert_eq!(
            next_add_step(2, None, "b:1", false, false),
            Ok(AddStep::AddLearner)
        );
        assert_eq!(
            next_add_step(2, None, "b:1", true, false),
            Ok(AddStep::AddLearner)
        );
        assert_eq!(
            next_add_step(2, voter("b:1"), "b:1", false, false),
            Ok(AddStep::Nothing)
        );
        assert_eq!(
            next_add_step(2, learner("b:1"), "b:1", true, false),
            Ok(AddStep::Nothing)
        );
        assert_eq!(
            next_add_step(2, learner("b:1"), "b:1", false, false),
            Ok(AddStep::Promote)
        );
        assert_eq!(
            next_add_step(2, learner("b:1"), "", false, false),
            Ok(AddStep::Promote)
        );
        assert_eq!(
            next_add_step(2, voter("b:1"), "b:2", false, false),
            Ok(AddStep::UpdateAddress)
        );
        assert_eq!(
            next_add_step(2, learner("b:1"), "b:2", true, false),
            Ok(AddStep::UpdateAddress)
        );
    }

    #[test]
    fn adding_refuses_what_it_cannot_do() {
        assert_eq!(
            next_add_step(2, None, "", false, false),
            Err(RequestError::UnknownMember { id: 2 })
        );
        assert!(matches!(
            next_add_step(2, voter("b:1"), "b:1", true, false),
            Err(RequestError::Refused { .. })
        ));
    }

    #[test]
    fn departures() {
        assert_eq!(
            departure(4, 1, None, 3, false),
            Err(RequestError::UnknownMember { id: 4 })
        );
        assert_eq!(
            departure(4, 1, None, 3, true),
            Err(RequestError::UnknownMember { id: 4 })
        );
        assert_eq!(
            departure(2, 1, voter("b"), 3, false),
            Ok(Departure::RemoveVoter)
        );
        assert_eq!(
            departure(2, 1, voter("b"), 3, true),
            Ok(Departure::RemoveVoter)
        );
        assert_eq!(
            departure(2, 1, learner("b"), 3, false),
            Ok(Departure::RemoveLearner)
        );
        assert_eq!(
            departure(2, 1, learner("b"), 3, true),
            Ok(Departure::Nothing)
        );
        assert_eq!(
            departure(1, 1, voter("a"), 3, false),
            Ok(Departure::TransferFirst)
        );
        assert_eq!(
            departure(1, 1, voter("a"), 2, true),
            Ok(Departure::TransferFirst)
        );
        assert!(matches!(
            departure(1, 1, voter("a"), 1, false),
            Err(RequestError::Refused { .. })
        ));
        // The last voter may still drop its learners.
        assert_eq!(
            departure(2, 1, learner("b"), 1, false),
            Ok(Departure::RemoveLearner)
        );
    }

    #[test]
    fn transfer_goes_to_the_most_caught_up_voter() {
        let voters = [1, 2, 3];
        let progress = [(2, Some(10)), (3, Some(12)), (4, Some(20))];
        assert_eq!(transfer_target(1, None, &voters, &[4], &progress), Ok(3));
        let tied = [(3, Some(12)), (2, Some(12))];
        assert_eq!(transfer_target(1, None, &voters, &[], &tied), Ok(2));
        let unknown = [(2, None), (3, Some(0))];
        assert_eq!(transfer_target(1, None, &voters, &[], &unknown), Ok(3));
        assert_eq!(transfer_target(1, Some(2), &voters, &[4], &progress), Ok(2));
    }

    #[test]
    fn transfer_refuses_learners_strangers_and_loneliness() {
        assert!(matches!(
            transfer_target(1, Some(4), &[1, 2], &[4], &[]),
            Err(RequestError::Refused { .. })
        ));
        assert_eq!(
            transfer_target(1, Some(9), &[1, 2], &[4], &[]),
            Err(RequestError::UnknownMember { id: 9 })
        );
        assert!(matches!(
            transfer_target(1, None, &[1], &[4], &[(4, Some(3))]),
            Err(RequestError::Refused { .. })
        ));
    }

    #[test]
    fn a_joint_configuration_is_finished_towards_its_last_set() {
        let old = BTreeSet::from([1, 2]);
        let new = BTreeSet::from([1, 2, 3]);
        assert_eq!(unfinished_joint(&[old.clone(), new.clone()]), Some(new));
        assert_eq!(unfinished_joint(std::slice::from_ref(&old)), None);
        assert_eq!(unfinished_joint(&[]), None);
    }

    #[test]
    fn a_stale_add_does_not_move_a_member_back() {
        // The request added node 2 at b:1; the node then restarted at b:2 and had that
        // recorded. The old request goes on to promote it, at the newer address.
        assert_eq!(
            next_add_step(2, learner("b:2"), "b:1", false, true),
            Ok(AddStep::Promote)
        );
        assert_eq!(
            next_add_step(2, voter("b:2"), "b:1", false, true),
            Ok(AddStep::Nothing)
        );
        // As its first change, a request does record its address.
        assert_eq!(
            next_add_step(2, voter("b:2"), "b:1", false, false),
            Ok(AddStep::UpdateAddress)
        );
    }
}
