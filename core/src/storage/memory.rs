//! The in-memory reference store: a `BTreeMap` key space and a `BTreeMap` log.
//!
//! It is the model every other store is compared with, the store of in-memory mode (no files at
//! all), and the base of the simulator's store. Nothing here is durable beyond the process: a
//! flush callback fires at once because there is nothing more to wait for.
//!
//! Concurrency: the log and the state machine each sit behind a lock. A read view holds a shared
//! lock, so writers wait while a view (a query or a snapshot build) is open; views are brief.
//! A write transaction edits the map in place under the exclusive lock and keeps an undo list,
//! replayed if it is dropped without commit, which makes it all-or-nothing.

use std::collections::BTreeMap;
use std::io;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::{
    AppliedState, FlushCallback, KvRead, KvWrite, LogBounds, LogStore, ScanVisitor, SnapshotData,
    SnapshotSink, StateMachineStore, StateRead, StateWrite, StorageResult,
};
use crate::error::StorageError;
use crate::raft_types::{LogEntry, LogId, SnapshotMeta, Vote};
use crate::response::Versioned;

/// The Raft log and vote in memory.
#[derive(Default, Debug)]
pub struct MemoryLogStore {
    state: Mutex<LogState>,
}

#[derive(Default, Debug, Clone)]
struct LogState {
    entries: BTreeMap<u64, LogEntry>,
    last_purged: Option<LogId>,
    vote: Option<Vote>,
    committed: Option<LogId>,
    cluster_id: Option<u64>,
}

impl MemoryLogStore {
    /// An empty log with no vote.
    pub fn new() -> MemoryLogStore {
        MemoryLogStore::default()
    }

    /// An independent copy of the log and vote as they are now (the simulator's disk image).
    pub fn duplicate(&self) -> MemoryLogStore {
        MemoryLogStore {
            state: Mutex::new(self.state().clone()),
        }
    }

    fn state(&self) -> MutexGuard<'_, LogState> {
        // A poisoned lock means a thread panicked mid-update; the maps are still structurally
        // valid (every update is a single insert/remove), so continuing is safe.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl LogStore for MemoryLogStore {
    fn log_bounds(&self) -> StorageResult<LogBounds> {
        let state = self.state();
        let last = state
            .entries
            .values()
            .next_back()
            .map(|entry| entry.log_id)
            .or(state.last_purged);
        Ok(LogBounds {
            last_purged: state.last_purged,
            last,
        })
    }

    fn entries(&self, start: u64, end: u64) -> StorageResult<Vec<LogEntry>> {
        if start >= end {
            return Ok(Vec::new());
        }
        Ok(self
            .state()
            .entries
            .range(start..end)
            .map(|(_, entry)| entry.clone())
            .collect())
    }

    fn vote(&self) -> StorageResult<Option<Vote>> {
        Ok(self.state().vote)
    }

    fn save_vote(&self, vote: &Vote) -> StorageResult<()> {
        self.state().vote = Some(*vote);
        Ok(())
    }

    fn cluster_id(&self) -> StorageResult<Option<u64>> {
        Ok(self.state().cluster_id)
    }

    fn save_cluster_id(&self, id: u64) -> StorageResult<()> {
        self.state().cluster_id = Some(id);
        Ok(())
    }

    fn committed(&self) -> StorageResult<Option<LogId>> {
        Ok(self.state().committed)
    }

    fn save_committed(&self, committed: Option<&LogId>) -> StorageResult<()> {
        self.state().committed = committed.copied();
        Ok(())
    }

    fn append(&self, entries: Vec<LogEntry>, on_durable: FlushCallback) -> StorageResult<()> {
        let mut state = self.state();
        let mut next = next_index(&state);
        for entry in &entries {
            if next.is_some_and(|expected| entry.log_id.index != expected) {
                return Err(StorageError::Contract(format!(
                    "append of index {} leaves a gap after {:?}",
                    entry.log_id.index,
                    next.map(|n| n - 1)
                )));
            }
            next = Some(entry.log_id.index + 1);
        }
        for entry in entries {
            state.entries.insert(entry.log_id.index, entry);
        }
        drop(state);
        on_durable.flushed(Ok(()));
        Ok(())
    }

    fn truncate_after(&self, last_kept: Option<&LogId>) -> StorageResult<()> {
        let first_removed = last_kept.map_or(0, |id| id.index + 1);
        self.state().entries.split_off(&first_removed);
        Ok(())
    }

    fn purge_through(&self, log_id: &LogId) -> StorageResult<()> {
        let mut state = self.state();
        state.entries = state.entries.split_off(&(log_id.index + 1));
        if state
            .last_purged
            .is_none_or(|purged| purged.index < log_id.index)
        {
            state.last_purged = Some(*log_id);
        }
        Ok(())
    }
}

/// The index the next append must start at, or `None` when any start is acceptable (an empty
/// log that was never purged).
fn next_index(state: &LogState) -> Option<u64> {
    match state.entries.last_key_value() {
        Some((index, _)) => Some(index + 1),
        None => state.last_purged.map(|purged| purged.index + 1),
    }
}

/// The key-value state machine in memory.
#[derive(Default, Debug)]
pub struct MemoryStateMachine {
    state: RwLock<MachineState>,
    snapshot: Mutex<Option<(SnapshotMeta, MemorySnapshot)>>,
}

#[derive(Default, Debug, Clone)]
struct MachineState {
    data: BTreeMap<Vec<u8>, Versioned>,
    applied: AppliedState,
    staged: BTreeMap<u64, Vec<u8>>,
}

impl MemoryStateMachine {
    /// An empty state machine with nothing applied.
    pub fn new() -> MemoryStateMachine {
        MemoryStateMachine::default()
    }

    /// An independent copy of the data, applied state and current snapshot as they are now
    /// (the simulator's disk image).
    pub fn duplicate(&self) -> MemoryStateMachine {
        let state = self
            .state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let snapshot = self
            .snapshot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        MemoryStateMachine {
            state: RwLock::new(state),
            snapshot: Mutex::new(snapshot),
        }
    }

    /// Every pair, in key order: for comparing stores in tests and in the simulator.
    pub fn dump(&self) -> Vec<(Vec<u8>, Versioned)> {
        let state = self
            .state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state
            .data
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

impl StateMachineStore for MemoryStateMachine {
    type Read<'a> = MemoryRead<'a>;
    type Write<'a> = MemoryWrite<'a>;
    type Snapshot = MemorySnapshot;
    type Sink = MemorySnapshotSink;

    fn read(&self) -> StorageResult<MemoryRead<'_>> {
        Ok(MemoryRead {
            state: self
                .state
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        })
    }

    fn write(&self) -> StorageResult<MemoryWrite<'_>> {
        Ok(MemoryWrite {
            state: self
                .state
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
            undo: Vec::new(),
        })
    }

    fn create_snapshot(&self, _meta: &SnapshotMeta) -> StorageResult<MemorySnapshotSink> {
        Ok(MemorySnapshotSink { bytes: Vec::new() })
    }

    fn save_snapshot(&self, meta: &SnapshotMeta, snapshot: &MemorySnapshot) -> StorageResult<()> {
        let mut current = self
            .snapshot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *current = Some((meta.clone(), snapshot.clone()));
        Ok(())
    }

    fn current_snapshot(&self) -> StorageResult<Option<(SnapshotMeta, MemorySnapshot)>> {
        let current = self
            .snapshot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(current.clone())
    }
}

/// A read view of a [`MemoryStateMachine`]; writers wait while it is open.
#[derive(Debug)]
pub struct MemoryRead<'a> {
    state: RwLockReadGuard<'a, MachineState>,
}

impl KvRead for MemoryRead<'_> {
    fn get(&self, key: &[u8]) -> StorageResult<Option<Versioned>> {
        Ok(self.state.data.get(key).cloned())
    }

    fn scan(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        visit: &mut ScanVisitor<'_>,
    ) -> StorageResult<()> {
        scan_map(&self.state.data, lower, upper, visit);
        Ok(())
    }
}

impl StateRead for MemoryRead<'_> {
    fn applied_state(&self) -> StorageResult<AppliedState> {
        Ok(self.state.applied.clone())
    }

    fn staged(&self, seq: u64) -> StorageResult<Option<Vec<u8>>> {
        Ok(self.state.staged.get(&seq).cloned())
    }
}

/// One change to undo if the transaction is dropped.
#[derive(Debug)]
enum Undo {
    /// Put back what the key held (or remove it again).
    Key(Vec<u8>, Option<Versioned>),
    /// Put back the whole map, as it was before a clear.
    All(BTreeMap<Vec<u8>, Versioned>),
    /// Put back the applied state.
    Applied(AppliedState),
    /// Put back a staged piece (or remove it again).
    Staged(u64, Option<Vec<u8>>),
    /// Put back the whole staging area, as it was before a clear.
    AllStaged(BTreeMap<u64, Vec<u8>>),
}

/// A write transaction on a [`MemoryStateMachine`].
#[derive(Debug)]
pub struct MemoryWrite<'a> {
    state: RwLockWriteGuard<'a, MachineState>,
    undo: Vec<Undo>,
}

impl KvRead for MemoryWrite<'_> {
    fn get(&self, key: &[u8]) -> StorageResult<Option<Versioned>> {
        Ok(self.state.data.get(key).cloned())
    }

    fn scan(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        visit: &mut ScanVisitor<'_>,
    ) -> StorageResult<()> {
        scan_map(&self.state.data, lower, upper, visit);
        Ok(())
    }
}

impl KvWrite for MemoryWrite<'_> {
    fn put(&mut self, key: &[u8], value: &[u8], revision: u64) -> StorageResult<()> {
        let versioned = Versioned {
            value: value.to_vec(),
            revision,
        };
        let previous = self.state.data.insert(key.to_vec(), versioned);
        self.undo.push(Undo::Key(key.to_vec(), previous));
        Ok(())
    }

    fn remove(&mut self, key: &[u8]) -> StorageResult<bool> {
        let previous = self.state.data.remove(key);
        let existed = previous.is_some();
        if existed {
            self.undo.push(Undo::Key(key.to_vec(), previous));
        }
        Ok(existed)
    }

    fn clear(&mut self) -> StorageResult<u64> {
        let previous = std::mem::take(&mut self.state.data);
        let count = previous.len() as u64;
        self.undo.push(Undo::All(previous));
        Ok(count)
    }
}

impl StateRead for MemoryWrite<'_> {
    fn applied_state(&self) -> StorageResult<AppliedState> {
        Ok(self.state.applied.clone())
    }

    fn staged(&self, seq: u64) -> StorageResult<Option<Vec<u8>>> {
        Ok(self.state.staged.get(&seq).cloned())
    }
}

impl StateWrite for MemoryWrite<'_> {
    fn set_applied_state(&mut self, state: &AppliedState) -> StorageResult<()> {
        let previous = std::mem::replace(&mut self.state.applied, state.clone());
        self.undo.push(Undo::Applied(previous));
        Ok(())
    }

    fn stage(&mut self, seq: u64, bytes: &[u8]) -> StorageResult<()> {
        let previous = self.state.staged.insert(seq, bytes.to_vec());
        self.undo.push(Undo::Staged(seq, previous));
        Ok(())
    }

    fn clear_staged(&mut self) -> StorageResult<()> {
        let previous = std::mem::take(&mut self.state.staged);
        self.undo.push(Undo::AllStaged(previous));
        Ok(())
    }

    fn commit(mut self) -> StorageResult<()> {
        self.undo.clear();
        Ok(())
    }
}

impl Drop for MemoryWrite<'_> {
    fn drop(&mut self) {
        while let Some(undo) = self.undo.pop() {
            match undo {
                Undo::Key(key, Some(previous)) => {
                    self.state.data.insert(key, previous);
                }
                Undo::Key(key, None) => {
                    self.state.data.remove(&key);
                }
                Undo::All(previous) => self.state.data = previous,
                Undo::Applied(previous) => self.state.applied = previous,
                Undo::Staged(seq, Some(previous)) => {
                    self.state.staged.insert(seq, previous);
                }
                Undo::Staged(seq, None) => {
                    self.state.staged.remove(&seq);
                }
                Undo::AllStaged(previous) => self.state.staged = previous,
            }
        }
    }
}

/// A snapshot held in memory: the bytes of a snapshot file.
#[derive(Clone, Debug)]
pub struct MemorySnapshot {
    bytes: Arc<Vec<u8>>,
}

impl MemorySnapshot {
    /// Wraps snapshot bytes (for example received from a peer).
    pub fn from_bytes(bytes: Vec<u8>) -> MemorySnapshot {
        MemorySnapshot {
            bytes: Arc::new(bytes),
        }
    }

    /// The snapshot's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// Shared snapshot bytes as a reader's buffer.
struct SharedBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl SnapshotData for MemorySnapshot {
    fn open(&self) -> StorageResult<Box<dyn io::Read + Send>> {
        Ok(Box::new(io::Cursor::new(SharedBytes(Arc::clone(
            &self.bytes,
        )))))
    }

    fn size_bytes(&self) -> u64 {
        self.bytes.len() as u64
    }
}

/// A snapshot being written into memory.
#[derive(Debug)]
pub struct MemorySnapshotSink {
    bytes: Vec<u8>,
}

impl io::Write for MemorySnapshotSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl SnapshotSink for MemorySnapshotSink {
    type Snapshot = MemorySnapshot;

    fn finish(self) -> StorageResult<MemorySnapshot> {
        Ok(MemorySnapshot::from_bytes(self.bytes))
    }
}

/// Visits the pairs of `map` within the bounds. `BTreeMap::range` panics on inverted bounds,
/// which a request may well contain, so they are checked first.
fn scan_map(
    map: &BTreeMap<Vec<u8>, Versioned>,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
    visit: &mut ScanVisitor<'_>,
) {
    if bounds_are_empty(lower, upper) {
        return;
    }
    for (key, found) in map.range::<[u8], _>((lower, upper)) {
        if visit(key, &found.value, found.revision).is_break() {
            break;
        }
    }
}

/// True when no key can lie within the bounds.
pub fn bounds_are_empty(lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> bool {
    match (lower, upper) {
        (Bound::Included(low), Bound::Included(high)) => low > high,
        (Bound::Included(low) | Bound::Excluded(low), Bound::Excluded(high))
        | (Bound::Excluded(low), Bound::Included(high)) => low >= high,
        (Bound::Unbounded, _) | (_, Bound::Unbounded) => false,
    }
}
