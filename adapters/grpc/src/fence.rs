//! Fencing of Raft RPCs: every RPC a node sends names the cluster it belongs to and the node it
//! is meant for (gRPC metadata `dbadger-cluster` and `dbadger-to`), and a node refuses an RPC
//! from another cluster or for another node.
//!
//! After a recovery, the survivor leads a new cluster (a new cluster id); a member of the old
//! one that comes back on its old data knows only the old id, so its RPCs are refused and it
//! can neither win a vote nor overwrite a log. The `to` check catches an address that now
//! belongs to another node (a member restarted elsewhere, a port reused).
//!
//! A node that does not know its cluster yet (new, joining; or a store that never recorded
//! one) accepts the cluster of the first RPC it receives from a peer and keeps it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dbadger_core::raft_types::NodeId;
use tonic::metadata::MetadataMap;

/// The metadata key naming the sender's cluster.
pub const CLUSTER_HEADER: &str = "dbadger-cluster";
/// The metadata key naming the node an RPC is for.
pub const TO_HEADER: &str = "dbadger-to";

/// What is done with the cluster id a node adopts: recorded durably by its store.
pub type AdoptCluster = dyn Fn(u64) + Send + Sync;

/// A node's fencing identity: its id and its cluster's (0: not known yet).
pub struct Fence {
    node: NodeId,
    cluster: AtomicU64,
    adopt: Box<AdoptCluster>,
}

impl std::fmt::Debug for Fence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fence")
            .field("node", &self.node)
            .field("cluster", &self.cluster())
            .finish()
    }
}

/// Why an RPC was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// It was meant for another node.
    OtherNode {
        /// The node it was for.
        to: NodeId,
        /// This node.
        me: NodeId,
    },
    /// It came from another cluster.
    OtherCluster {
        /// The sender's cluster.
        from: u64,
        /// This node's cluster.
        mine: u64,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::OtherNode { to, me } => {
                write!(f, "this RPC is for node {to}, but this is node {me}")
            }
            Refusal::OtherCluster { from, mine } => write!(
                f,
                "this RPC comes from cluster {from:016x}, but this node belongs to cluster \
                 {mine:016x} (a node of a cluster replaced by a recovery?)"
            ),
        }
    }
}

/// Whether node `me` of cluster `mine` (0: unknown) takes an RPC from cluster `from`, for node
/// `to` (each `None` when the sender did not say: a peer of an older version).
pub fn admits(me: NodeId, mine: u64, from: Option<u64>, to: Option<NodeId>) -> Result<(), Refusal> {
    if let Some(to) = to
        && to != me
    {
        return Err(Refusal::OtherNode { to, me });
    }
    match from {
        Some(from) if mine != 0 && from != 0 && from != mine => {
            Err(Refusal::OtherCluster { from, mine })
        }
        _ => Ok(()),
    }
}

fn header(metadata: &MetadataMap, key: &str) -> Option<u64> {
    let value = metadata.get(key)?.to_str().ok()?;
    u64::from_str_radix(value, 16).ok()
}

impl Fence {
    /// The fence of node `node` in cluster `cluster` (0: not known yet); `adopt` records a
    /// cluster id learned from a peer.
    pub fn new(node: NodeId, cluster: u64, adopt: Box<AdoptCluster>) -> Arc<Fence> {
        Arc::new(Fence {
            node,
            cluster: AtomicU64::new(cluster),
            adopt,
        })
    }

    /// A fence that checks only the `to` header (no cluster known, none recorded): for tests
    /// and stores that keep no cluster id.
    pub fn open(node: NodeId) -> Arc<Fence> {
        Fence::new(node, 0, Box::new(|_| {}))
    }

    /// This node's cluster id; 0 while not known.
    pub fn cluster(&self) -> u64 {
        self.cluster.load(Ordering::Acquire)
    }

    /// Makes `cluster` this node's cluster and records it: a node that founds a cluster
    /// (bootstrap, recovery) does this once.
    pub fn found(&self, cluster: u64) {
        self.cluster.store(cluster, Ordering::Release);
        (self.adopt)(cluster);
    }

    /// Adds the cluster header only: a forwarded request names no node, but must not cross
    /// from one cluster to another (a lost node that comes back after a recovery must not get
    /// itself added to the new cluster through a forward).
    pub fn stamp_cluster(&self, metadata: &mut MetadataMap) {
        let cluster = self.cluster();
        if cluster != 0
            && let Ok(value) = format!("{cluster:x}").parse()
        {
            metadata.insert(CLUSTER_HEADER, value);
        }
    }

    /// Checks an arriving forwarded request's cluster header. Unlike [`Fence::check`], it never
    /// adopts the sender's cluster: forwards come from nodes that are not members yet too.
    pub fn check_cluster(&self, metadata: &MetadataMap) -> Result<(), tonic::Status> {
        admits(
            self.node,
            self.cluster(),
            header(metadata, CLUSTER_HEADER),
            None,
        )
        .map_err(|refusal| tonic::Status::failed_precondition(refusal.to_string()))
    }

    /// Adds the fencing headers of an RPC for node `to`.
    pub fn stamp(&self, metadata: &mut MetadataMap, to: NodeId) {
        self.stamp_cluster(metadata);
        if let Ok(value) = format!("{to:x}").parse() {
            metadata.insert(TO_HEADER, value);
        }
    }

    /// A request for node `to` carrying `message`, with the fencing headers.
    pub fn request<T>(&self, message: T, to: NodeId) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        self.stamp(request.metadata_mut(), to);
        request
    }

    /// Checks an arriving RPC's headers; a node that knows no cluster yet adopts the sender's.
    pub fn check(&self, metadata: &MetadataMap) -> Result<(), tonic::Status> {
        let from = header(metadata, CLUSTER_HEADER);
        let to = header(metadata, TO_HEADER);
        admits(self.node, self.cluster(), from, to)
            .map_err(|refusal| tonic::Status::failed_precondition(refusal.to_string()))?;
        if let Some(from) = from
            && from != 0
            && self
                .cluster
                .compare_exchange(0, from, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            (self.adopt)(from);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpcs_for_another_node_or_cluster_are_refused() {
        assert_eq!(admits(1, 7, Some(7), Some(1)), Ok(()));
        assert_eq!(
            admits(1, 7, Some(7), Some(2)),
            Err(Refusal::OtherNode { to: 2, me: 1 })
        );
        assert_eq!(
            admits(1, 7, Some(8), Some(1)),
            Err(Refusal::OtherCluster { from: 8, mine: 7 })
        );
        // Unknown on either side, or not said: taken.
        assert_eq!(admits(1, 0, Some(8), Some(1)), Ok(()));
        assert_eq!(admits(1, 7, Some(0), None), Ok(()));
        assert_eq!(admits(1, 7, None, None), Ok(()));
    }

    #[test]
    fn headers_round_trip_and_an_unknown_cluster_is_adopted() {
        let adopted = Arc::new(AtomicU64::new(0));
        let record = Arc::clone(&adopted);
        let receiver = Fence::new(2, 0, Box::new(move |id| record.store(id, Ordering::SeqCst)));
        let sender = Fence::open(1);
        sender.cluster.store(0xabc, Ordering::SeqCst);
        let request = sender.request((), 2);
        assert_eq!(
            receiver.check(request.metadata()).map_err(|s| s.code()),
            Ok(())
        );
        assert_eq!(receiver.cluster(), 0xabc);
        assert_eq!(adopted.load(Ordering::SeqCst), 0xabc);
        let stranger = Fence::open(3);
        stranger.cluster.store(0xdef, Ordering::SeqCst);
        let refused = receiver.check(stranger.request((), 2).metadata());
        assert_eq!(
            refused.map_err(|s| s.code()),
            Err(tonic::Code::FailedPrecondition)
        );
        let misaddressed = receiver.check(sender.request((), 9).metadata());
        assert!(misaddressed.is_err());
    }
}
