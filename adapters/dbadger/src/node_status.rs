//! [`NodeStatus`]: a node's view of the cluster at one moment, and the readiness rule.

use std::sync::atomic::{AtomicBool, Ordering};

use dbadger_core::raft_types::NodeId;

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
    /// On the leader, the last log index each other member is known to hold (`None` before its
    /// first answer); empty on other nodes, which do not see replication.
    pub replication: Vec<(NodeId, Option<u64>)>,
    /// Why the node's Raft core stopped, if it failed (its disk, most likely): the node then
    /// serves nothing until it is restarted.
    pub failure: Option<String>,
    /// The id of the cluster the node belongs to (0 until it knows): a recovery founds a new
    /// one, and nodes refuse Raft RPCs from any other.
    pub cluster_id: u64,
    /// Whether the node has caught up: it knows a leader, and it has applied everything it
    /// knows to be committed, or stays within [`READY_APPLY_LAG`] entries of that since it
    /// last had. (Writes in flight put the commit index briefly ahead of the applied index.)
    pub caught_up: bool,
}

impl NodeStatus {
    /// Whether the node can serve: it has not failed and has caught up (see
    /// [`NodeStatus::caught_up`]).
    pub fn is_ready(&self) -> bool {
        self.failure.is_none() && self.caught_up
    }
}

/// How many committed entries a node that has caught up may still have to apply and stay
/// ready. Every write is committed a moment before it is applied, on every node; without this
/// allowance each write would take the node out of readiness, and its health to NOT_SERVING.
/// A node further behind than this (a stalled disk, a long replay) is not ready.
pub const READY_APPLY_LAG: u64 = 1024;

/// The readiness rule: with a leader known, a node catches up once it has applied everything
/// it knows committed, and stays caught up while it has at most [`READY_APPLY_LAG`] entries
/// left to apply. Without a leader it is not caught up.
pub(crate) fn caught_up(
    was_caught_up: bool,
    leader_known: bool,
    applied_index: u64,
    committed_index: u64,
) -> bool {
    let behind = committed_index.saturating_sub(applied_index);
    leader_known && (behind == 0 || (was_caught_up && behind <= READY_APPLY_LAG))
}

/// A node's readiness as last observed: the rule depends on the previous answer.
#[derive(Debug, Default)]
pub(crate) struct Readiness(AtomicBool);

impl Readiness {
    /// Applies [`caught_up`] to what the node sees now, remembers and returns the answer.
    pub(crate) fn observe(
        &self,
        leader_known: bool,
        applied_index: u64,
        committed_index: u64,
    ) -> bool {
        let mut now = false;
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |was| {
                now = caught_up(was, leader_known, applied_index, committed_index);
                Some(now)
            });
        now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_catches_up_only_with_a_leader_and_nothing_left_to_apply() {
        assert!(caught_up(false, true, 7, 7));
        assert!(!caught_up(false, true, 6, 7));
        assert!(!caught_up(false, false, 7, 7));
    }

    #[test]
    fn a_caught_up_node_stays_so_while_writes_are_in_flight() {
        assert!(caught_up(true, true, 6, 7));
        assert!(caught_up(true, true, 100, 100 + READY_APPLY_LAG));
    }

    #[test]
    fn a_node_too_far_behind_or_without_a_leader_is_not_caught_up() {
        assert!(!caught_up(true, true, 100, 101 + READY_APPLY_LAG));
        assert!(!caught_up(true, false, 7, 7));
    }

    #[test]
    fn the_latch_remembers_each_answer() {
        let readiness = Readiness::default();
        assert!(!readiness.observe(true, 6, 7), "never caught up yet");
        assert!(readiness.observe(true, 7, 7));
        assert!(readiness.observe(true, 7, 9), "writes in flight");
        assert!(!readiness.observe(false, 9, 9), "the leader is lost");
        assert!(!readiness.observe(true, 9, 10), "must catch up again");
    }
}
