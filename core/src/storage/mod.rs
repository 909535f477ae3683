//! The storage traits every dbadger store implements: a Raft log with a durable vote
//! ([`LogStore`]) and a key-value state machine whose data, applied log id and membership change
//! in one atomic transaction ([`StateMachineStore`]), with snapshot files.
//!
//! The traits are synchronous and small on purpose. Raft storage semantics (openraft's
//! `RaftLogStorage` and `RaftStateMachine`), the key-value rules and the snapshot format are
//! written once, in this crate, over these traits: see [`crate::raft_storage`],
//! [`crate::rules`] and [`crate::snapshot_format`]. A store only moves bytes durably.
//!
//! The reference implementation is [`memory`]; every store runs the conformance suite in
//! `crate::testing` (feature `testing`).

pub mod memory;

use std::io;
use std::ops::{Bound, ControlFlow};

use crate::error::StorageError;
use crate::raft_types::{LogEntry, LogId, SnapshotMeta, StoredMembership, Vote};
use crate::response::Versioned;

/// The result type of every storage call.
pub type StorageResult<T> = Result<T, StorageError>;

/// Where the log starts and ends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogBounds {
    /// The last entry removed by [`LogStore::purge_through`], if any.
    pub last_purged: Option<LogId>,
    /// The last entry present, or `last_purged` when the log is empty.
    pub last: Option<LogId>,
}

/// Told exactly once when an append is durable (or failed to become durable).
pub struct FlushCallback(Box<dyn FnOnce(StorageResult<()>) + Send>);

impl FlushCallback {
    /// Wraps the function to call.
    pub fn new(callback: impl FnOnce(StorageResult<()>) + Send + 'static) -> FlushCallback {
        FlushCallback(Box::new(callback))
    }

    /// Reports the outcome. Call only once the appended entries are on stable storage.
    pub fn flushed(self, result: StorageResult<()>) {
        (self.0)(result);
    }
}

/// The Raft log and the vote.
///
/// # Contract
///
/// - Writes (`append`, `truncate_after`, `purge_through`, `save_vote`) are applied in the order
///   they are called; a later write never becomes durable before an earlier one.
/// - `save_vote` returns only once the vote is durable.
/// - `append` returns once the entries are readable through `entries`, and calls its callback
///   once they are durable, possibly before returning, possibly later from another thread.
/// - The log never has a hole: indices are consecutive from `last_purged + 1` to `last`.
pub trait LogStore: Send + Sync + 'static {
    /// The first and last positions of the log.
    fn log_bounds(&self) -> StorageResult<LogBounds>;

    /// Every entry with `start <= index < end` that the log holds, in index order. Entries may be
    /// absent only before the first or after the last entry held.
    fn entries(&self, start: u64, end: u64) -> StorageResult<Vec<LogEntry>>;

    /// The last saved vote.
    fn vote(&self) -> StorageResult<Option<Vote>>;

    /// Saves the vote durably before returning.
    fn save_vote(&self, vote: &Vote) -> StorageResult<()>;

    /// The last saved committed log id.
    fn committed(&self) -> StorageResult<Option<LogId>>;

    /// Saves the committed log id. It need not be durable at once: it is a hint that lets a
    /// restarted node re-apply its log up to where it had been before it hears from a leader.
    fn save_committed(&self, committed: Option<&LogId>) -> StorageResult<()>;

    /// Appends consecutive entries after the last one (replacing nothing: openraft truncates
    /// conflicting entries first).
    fn append(&self, entries: Vec<LogEntry>, on_durable: FlushCallback) -> StorageResult<()>;

    /// Removes every entry with an index greater than `last_kept`'s (all entries for `None`).
    fn truncate_after(&self, last_kept: Option<&LogId>) -> StorageResult<()>;

    /// Removes every entry up to and including `log_id` and remembers it as the last purged.
    fn purge_through(&self, log_id: &LogId) -> StorageResult<()>;

    /// The id of the cluster this node belongs to, if the store recorded one (fencing; see
    /// `dbadger_grpc::fence`). The default records none.
    fn cluster_id(&self) -> StorageResult<Option<u64>> {
        Ok(None)
    }

    /// Records the node's cluster id durably. The default records nothing: such a node
    /// learns its cluster again from its peers after a restart.
    fn save_cluster_id(&self, id: u64) -> StorageResult<()> {
        let _ = id;
        Ok(())
    }
}

/// What the state machine has applied: the last log id and the membership in force.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppliedState {
    /// The last applied entry.
    pub last_applied: Option<LogId>,
    /// The last applied membership and the entry that carried it.
    pub membership: StoredMembership,
}

/// The callback of [`KvRead::scan`]: called with each key, value and revision; returns
/// `Break` to stop the scan.
pub type ScanVisitor<'a> = dyn FnMut(&[u8], &[u8], u64) -> ControlFlow<()> + 'a;

/// Read access to the key space, at one consistent point.
pub trait KvRead {
    /// The value and revision stored under `key`.
    fn get(&self, key: &[u8]) -> StorageResult<Option<Versioned>>;

    /// Calls `visit(key, value, revision)` for every pair with a key inside the bounds, in
    /// ascending key order, until `visit` breaks. Inverted bounds visit nothing.
    fn scan(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        visit: &mut ScanVisitor<'_>,
    ) -> StorageResult<()>;
}

/// A write transaction on the key space: its own writes are visible to its reads; nothing is
/// visible to anyone else until commit.
pub trait KvWrite: KvRead {
    /// Stores `value` at `revision` under `key`, replacing any previous value.
    fn put(&mut self, key: &[u8], value: &[u8], revision: u64) -> StorageResult<()>;

    /// Removes `key`; returns whether it existed.
    fn remove(&mut self, key: &[u8]) -> StorageResult<bool>;

    /// Removes every key; returns how many there were.
    fn clear(&mut self) -> StorageResult<u64>;
}

/// A consistent read view of the state machine: data and applied state from the same point.
pub trait StateRead: KvRead {
    /// The applied state of this view.
    fn applied_state(&self) -> StorageResult<AppliedState>;

    /// Piece `seq` of the restore staging area (see [`crate::restore`]): bytes that are not
    /// part of the key space, committed and made durable with it.
    fn staged(&self, seq: u64) -> StorageResult<Option<Vec<u8>>>;
}

/// A state-machine transaction: key-value changes and the applied state commit together or not
/// at all. Dropping it without [`StateWrite::commit`] discards every change.
pub trait StateWrite: StateRead + KvWrite {
    /// Records the applied state that commits with this transaction's data.
    fn set_applied_state(&mut self, state: &AppliedState) -> StorageResult<()>;

    /// Stores piece `seq` of the restore staging area, replacing any piece with that number.
    fn stage(&mut self, seq: u64, bytes: &[u8]) -> StorageResult<()>;

    /// Empties the restore staging area.
    fn clear_staged(&mut self) -> StorageResult<()>;

    /// Makes every change of this transaction visible atomically.
    fn commit(self) -> StorageResult<()>;

    /// Commits like [`StateWrite::commit`] and calls `acknowledge`, which answers the clients
    /// of the applied entries. A store may call it before its flush has finished, so that
    /// answers need not wait for the disk, provided every read view opened after
    /// `acknowledge` began sees this transaction or fails. The default commits first.
    fn commit_and_acknowledge(self, acknowledge: impl FnOnce()) -> StorageResult<()>
    where
        Self: Sized,
    {
        self.commit()?;
        acknowledge();
        Ok(())
    }
}

/// A finished, durable snapshot file (see [`crate::snapshot_format`]).
pub trait SnapshotData: Send + Sync + 'static {
    /// Opens the snapshot's bytes for reading from the start. The reader owns what it needs,
    /// so it can be moved into a task that streams the snapshot to a peer.
    fn open(&self) -> StorageResult<Box<dyn io::Read + Send>>;

    /// The snapshot's size in bytes.
    fn size_bytes(&self) -> u64;
}

/// A snapshot being written, chunk by chunk: by the local builder or from the network.
pub trait SnapshotSink: io::Write + Send + 'static {
    /// The finished snapshot type.
    type Snapshot: SnapshotData;

    /// Makes the written bytes a durable snapshot. The content is checked when it is installed,
    /// not here.
    fn finish(self) -> StorageResult<Self::Snapshot>;
}

/// The key-value state machine and its snapshots.
///
/// # Contract
///
/// - Every [`StateWrite`] is atomic: after a crash either all of its changes (data and applied
///   state) are present or none.
/// - A [`StateRead`] sees one consistent point while writes continue.
/// - `save_snapshot` makes a snapshot the current one and applies the retention policy;
///   `current_snapshot` returns it (with its metadata) after a restart too.
pub trait StateMachineStore: Send + Sync + 'static {
    /// A consistent read view.
    type Read<'a>: StateRead
    where
        Self: 'a;
    /// A write transaction.
    type Write<'a>: StateWrite
    where
        Self: 'a;
    /// A finished snapshot.
    type Snapshot: SnapshotData;
    /// A snapshot being written.
    type Sink: SnapshotSink<Snapshot = Self::Snapshot>;

    /// Opens a read view.
    fn read(&self) -> StorageResult<Self::Read<'_>>;

    /// Opens a write transaction. Write transactions are serialised.
    fn write(&self) -> StorageResult<Self::Write<'_>>;

    /// Starts writing a new snapshot file for `meta`.
    fn create_snapshot(&self, meta: &SnapshotMeta) -> StorageResult<Self::Sink>;

    /// Makes `snapshot` (already installed or built) the current snapshot, durably, and deletes
    /// older ones beyond the retention policy.
    fn save_snapshot(&self, meta: &SnapshotMeta, snapshot: &Self::Snapshot) -> StorageResult<()>;

    /// The current snapshot and its metadata.
    fn current_snapshot(&self) -> StorageResult<Option<(SnapshotMeta, Self::Snapshot)>>;

    /// Every snapshot the store keeps (the current one and those its retention policy keeps),
    /// newest first. The default keeps only the current one.
    fn snapshots(&self) -> StorageResult<Vec<(SnapshotMeta, Self::Snapshot)>> {
        Ok(self.current_snapshot()?.into_iter().collect())
    }

    /// How much of a bounded store is in use, for admission control: `None` for a store with
    /// no size bound (the in-memory stores).
    fn space(&self) -> Option<SpaceUsage> {
        None
    }
}

/// The space a bounded store uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpaceUsage {
    /// Bytes held by live data (pages in use by the log, the key-value data and the
    /// metadata; pages freed by deletes are not counted, since the store reuses them).
    pub used_bytes: u64,
    /// The most bytes the store may grow to.
    pub max_bytes: u64,
}
