//! [`NodeStatus`]: a node's view of the cluster at one moment.

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
}

impl NodeStatus {
    /// Whether the node can serve: it has not failed, knows a leader and has applied
    /// everything it knows to be committed.
    pub fn is_ready(&self) -> bool {
        self.failure.is_none()
            && ready(
                self.leader.is_some(),
                self.applied_index,
                self.committed_index,
            )
    }
}

/// The readiness rule, for [`NodeStatus::is_ready`] and for callers that read openraft's
/// metrics in place: a leader is known and everything known committed is applied.
pub(crate) fn ready(leader_known: bool, applied_index: u64, committed_index: u64) -> bool {
    leader_known && applied_index >= committed_index
}
