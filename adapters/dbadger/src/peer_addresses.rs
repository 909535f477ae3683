//! Keeps the node's peer links at the addresses its membership records: a member restarted
//! with another address is recorded with `SetNodes`, and openraft keeps its replication stream
//! (and that stream's client) across such a change, so the links are told here.

use dbadger_core::raft_storage::RaftStateMachineStore;
use dbadger_core::storage::StateMachineStore;
use dbadger_grpc::PeerAddresses;
use openraft::Raft;
use openraft::async_runtime::watch::WatchReceiver;

use crate::node::Types;

/// Follows the membership in the node's metrics until the node stops, pointing each peer's
/// link at its recorded address. Holds only the metrics (not the node), like the role log.
pub(crate) async fn follow_membership<S: StateMachineStore>(
    raft: Raft<Types, RaftStateMachineStore<S>>,
    addresses: PeerAddresses,
) {
    // The server metrics change only with the role, leader, vote or membership.
    let mut metrics = raft.server_metrics();
    drop(raft);
    let mut seen = None;
    loop {
        let members: Vec<(u64, String)> = {
            let metrics = metrics.borrow_watched();
            let membership = metrics.membership_config.as_ref();
            if seen.as_ref() == Some(membership.log_id()) {
                Vec::new()
            } else {
                seen = Some(*membership.log_id());
                membership
                    .membership()
                    .nodes()
                    .map(|(id, node)| (*id, node.addr.clone()))
                    .collect()
            }
        };
        for (id, addr) in &members {
            addresses.update(*id, addr);
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}
