//! Finishes joint membership configurations that interrupted changes leave behind.
//!
//! openraft changes voters in two entries: a joint configuration (old and new sets together),
//! then, once that is committed, the uniform new set. The second entry is proposed by the
//! caller of `change_membership`; if that caller gives up in between (its deadline passes, or
//! the leader refuses the write for a moment while its lease is unconfirmed) or leadership
//! changes, the joint configuration stays. Every election and commit then needs a majority of
//! both sets, so one unreachable node that is in both can stop the cluster for good. A leader
//! therefore writes the uniform configuration itself when it finds a committed joint one
//! still in place one check later; membership requests do the same before their own step
//! (`membership.rs`).

use std::collections::BTreeSet;
use std::sync::Weak;
use std::time::Duration;

use dbadger_core::raft_types::{LogId, NodeId};
use dbadger_core::storage::StateMachineStore;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::{ChangeMembers, ServerState};

use crate::membership_plan::unfinished_joint;
use crate::node::Node;

/// What one look at the leader's metrics found: a joint configuration, committed, with the
/// voters it was heading to.
fn committed_joint<S: StateMachineStore>(node: &Node<S>) -> Option<(LogId, BTreeSet<NodeId>)> {
    let metrics = node.raft.metrics();
    let metrics = metrics.borrow_watched();
    if metrics.state != ServerState::Leader {
        return None;
    }
    let config = metrics.membership_config.as_ref();
    let log_id = (*config.log_id())?;
    let target = unfinished_joint(config.membership().get_joint_config())?;
    (metrics.last_applied >= Some(log_id)).then_some((log_id, target))
}

/// Every `period`, until the node is dropped: on the leader, a committed joint configuration
/// seen at two looks in a row (so not one a request is finishing right now) is replaced by the
/// uniform configuration of its new voters (voters it drops stay as learners, which a removal
/// that is retried then removes).
pub(crate) async fn finish_interrupted_changes<S: StateMachineStore>(
    node: Weak<Node<S>>,
    period: Duration,
) {
    let mut seen_before: Option<LogId> = None;
    loop {
        tokio::time::sleep(period).await;
        let Some(node) = node.upgrade() else {
            return;
        };
        let found = committed_joint(&node);
        if let Some((log_id, target)) = &found
            && seen_before == Some(*log_id)
        {
            tracing::warn!(
                "finishing a membership change left half done: voters become {target:?}"
            );
            // A refusal (a change in progress, leadership lost) is looked at again next time.
            let _ = node
                .raft
                .change_membership(ChangeMembers::ReplaceAllVoters(target.clone()), true)
                .await;
        }
        seen_before = found.map(|(log_id, _)| log_id);
    }
}
