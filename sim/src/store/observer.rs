//! The hooks a simulated disk calls as its stores change, so that a monitor can check
//! invariants at every step instead of by sampling.

use dbadger_core::raft_types::{LogEntry, LogId, Vote};

/// Told of every durable-state change of the stores of the disks it observes, synchronously,
/// before the change takes effect where it says so. `node` is the Raft node id the disk was
/// attached with and `boot` the disk's boot count.
pub trait DiskObserver: Send + Sync {
    /// A vote is being saved.
    fn vote_saved(&self, node: u64, vote: &Vote);

    /// The committed log id is being saved; `entries` are the node's log entries from the
    /// previous committed index it saved in this boot (exclusive) up to `committed`.
    fn committed_saved(
        &self,
        node: u64,
        boot: u64,
        committed: Option<&LogId>,
        entries: &[LogEntry],
    );

    /// The log is about to lose `removed`, every entry after the last kept one.
    fn truncating(&self, node: u64, removed: &[LogEntry]);

    /// A state-machine commit records `applied` as the last applied log id.
    fn applied(&self, node: u64, boot: u64, applied: Option<&LogId>);
}
