//! The openraft type configuration of dbadger, generic over the async runtime, and the concrete
//! Raft types every store and adapter shares.
//!
//! Everything but the runtime is fixed: node ids are random `u64`s, nodes carry their address,
//! terms are `u64`, leader ids are the "advanced" (term, node) form, the application data is a
//! [`Command`] and its answer a [`Response`]. Because none of these depend on the runtime, storage
//! code uses the aliases below and works unchanged under tokio and under the simulator.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;

use openraft::{AsyncRuntime, OptionalSend, RaftTypeConfig};

use crate::command::Command;
use crate::response::Response;

/// A node's identity: a random `u64` drawn when its data directory is created, never reused.
pub type NodeId = u64;
/// What the cluster knows about a node: its address (`host:port`).
pub type Node = openraft::impls::BasicNode;
/// A leader's identity: its term and node id.
pub type LeaderId = openraft::impls::leader_id_adv::LeaderId<u64, NodeId>;
/// The position of a log entry: the leader that wrote it and its index.
pub type LogId = openraft::LogId<LeaderId>;
/// A vote: the leader this node voted for, and whether that leader is committed.
pub type Vote = openraft::impls::Vote<LeaderId>;
/// A cluster membership: voter sets (two while a joint change is in progress) and all nodes.
pub type Membership = openraft::Membership<NodeId, Node>;
/// A membership with the log id of the entry that introduced it.
pub type StoredMembership = openraft::StoredMembership<LeaderId, NodeId, Node>;
/// The payload of a log entry: blank, a command, or a membership change.
pub type EntryPayload = openraft::EntryPayload<Command, NodeId, Node>;
/// One Raft log entry.
pub type LogEntry = openraft::Entry<LeaderId, EntryPayload>;
/// What a snapshot covers: the last log id and the membership at that point.
pub type SnapshotMeta = openraft::SnapshotMeta<LeaderId, NodeId, Node>;

/// The dbadger openraft type configuration for the async runtime `RT` (tokio in production, the
/// madsim-backed runtime in the simulator).
pub struct RaftTypes<RT>(PhantomData<fn() -> RT>);

impl<RT> RaftTypeConfig for RaftTypes<RT>
where
    RT: AsyncRuntime,
{
    type D = Command;
    type R = Response;
    type NodeId = NodeId;
    type Node = Node;
    type Term = u64;
    type LeaderId = LeaderId;
    type Vote = Vote;
    type Payload = EntryPayload;
    type Entry = LogEntry;
    type AsyncRuntime = RT;
    type Responder<T>
        = openraft::impls::ProgressResponder<Self, T>
    where
        T: OptionalSend + 'static;
    type Batch<T>
        = openraft::impls::InlineBatch<T>
    where
        T: OptionalSend + 'static;
    type ErrorSource = openraft::impls::BoxedErrorSource;
}

// openraft asks a type configuration for the standard traits; a zero-sized marker implements
// them without placing any bound on `RT` (derive would demand `RT: Clone + Ord + ...`).

impl<RT> fmt::Debug for RaftTypes<RT> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RaftTypes")
    }
}

impl<RT> Clone for RaftTypes<RT> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<RT> Copy for RaftTypes<RT> {}

impl<RT> Default for RaftTypes<RT> {
    fn default() -> Self {
        RaftTypes(PhantomData)
    }
}

impl<RT> PartialEq for RaftTypes<RT> {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl<RT> Eq for RaftTypes<RT> {}

impl<RT> PartialOrd for RaftTypes<RT> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<RT> Ord for RaftTypes<RT> {
    fn cmp(&self, _other: &Self) -> Ordering {
        Ordering::Equal
    }
}

impl<RT> Hash for RaftTypes<RT> {
    fn hash<H: Hasher>(&self, _state: &mut H) {}
}
