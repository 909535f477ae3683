//! A state-machine store decorator that times every write transaction (an applied batch of
//! committed entries, or a snapshot install) for the `apply_seconds` histogram. The core stays
//! free of clocks; the timing lives here, in the adapter.

use std::ops::Bound;
use std::sync::Arc;
use std::time::Instant;

use dbadger_core::raft_types::SnapshotMeta;
use dbadger_core::response::Versioned;
use dbadger_core::storage::{
    AppliedState, KvRead, KvWrite, ScanVisitor, SpaceUsage, StateMachineStore, StateRead,
    StateWrite, StorageResult,
};

use crate::metrics::Metrics;

/// `S`, with its write transactions timed.
#[derive(Debug)]
pub(crate) struct TimedStore<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S> TimedStore<S> {
    pub(crate) fn new(inner: S, metrics: Arc<Metrics>) -> TimedStore<S> {
        TimedStore { inner, metrics }
    }
}

impl<S: StateMachineStore> StateMachineStore for TimedStore<S> {
    type Read<'a>
        = S::Read<'a>
    where
        Self: 'a;
    type Write<'a>
        = TimedWrite<'a, S>
    where
        Self: 'a;
    type Snapshot = S::Snapshot;
    type Sink = S::Sink;

    fn read(&self) -> StorageResult<S::Read<'_>> {
        self.inner.read()
    }

    fn write(&self) -> StorageResult<TimedWrite<'_, S>> {
        Ok(TimedWrite {
            started: Instant::now(),
            inner: self.inner.write()?,
            metrics: &self.metrics,
        })
    }

    fn create_snapshot(&self, meta: &SnapshotMeta) -> StorageResult<S::Sink> {
        self.inner.create_snapshot(meta)
    }

    fn save_snapshot(&self, meta: &SnapshotMeta, snapshot: &S::Snapshot) -> StorageResult<()> {
        self.inner.save_snapshot(meta, snapshot)
    }

    fn space(&self) -> Option<SpaceUsage> {
        self.inner.space()
    }

    fn current_snapshot(&self) -> StorageResult<Option<(SnapshotMeta, S::Snapshot)>> {
        self.inner.current_snapshot()
    }

    fn snapshots(&self) -> StorageResult<Vec<(SnapshotMeta, S::Snapshot)>> {
        self.inner.snapshots()
    }
}

/// A timed write transaction.
pub(crate) struct TimedWrite<'a, S: StateMachineStore + 'a> {
    inner: S::Write<'a>,
    started: Instant,
    metrics: &'a Metrics,
}

impl<S: StateMachineStore> KvRead for TimedWrite<'_, S> {
    fn get(&self, key: &[u8]) -> StorageResult<Option<Versioned>> {
        self.inner.get(key)
    }

    fn scan(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        visit: &mut ScanVisitor<'_>,
    ) -> StorageResult<()> {
        self.inner.scan(lower, upper, visit)
    }
}

impl<S: StateMachineStore> KvWrite for TimedWrite<'_, S> {
    fn put(&mut self, key: &[u8], value: &[u8], revision: u64) -> StorageResult<()> {
        self.inner.put(key, value, revision)
    }

    fn remove(&mut self, key: &[u8]) -> StorageResult<bool> {
        self.inner.remove(key)
    }

    fn clear(&mut self) -> StorageResult<u64> {
        self.inner.clear()
    }
}

impl<S: StateMachineStore> StateRead for TimedWrite<'_, S> {
    fn applied_state(&self) -> StorageResult<AppliedState> {
        self.inner.applied_state()
    }

    fn staged(&self, seq: u64) -> StorageResult<Option<Vec<u8>>> {
        self.inner.staged(seq)
    }
}

impl<S: StateMachineStore> StateWrite for TimedWrite<'_, S> {
    fn set_applied_state(&mut self, state: &AppliedState) -> StorageResult<()> {
        self.inner.set_applied_state(state)
    }

    fn stage(&mut self, seq: u64, bytes: &[u8]) -> StorageResult<()> {
        self.inner.stage(seq, bytes)
    }

    fn clear_staged(&mut self) -> StorageResult<()> {
        self.inner.clear_staged()
    }

    fn commit(self) -> StorageResult<()> {
        let outcome = self.inner.commit();
        self.metrics.record_apply(self.started.elapsed());
        outcome
    }

    /// Times up to the end of the commit, which may come after the answers.
    fn commit_and_acknowledge(self, acknowledge: impl FnOnce()) -> StorageResult<()> {
        let outcome = self.inner.commit_and_acknowledge(acknowledge);
        self.metrics.record_apply(self.started.elapsed());
        outcome
    }
}
