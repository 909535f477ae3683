//! The state-machine store of the simulator: transactions on the live view whose changes are
//! queued on the disk when they commit.

use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use dbadger_core::Versioned;
use dbadger_core::raft_types::SnapshotMeta;
use dbadger_core::storage::memory::{MemoryRead, MemorySnapshot, MemorySnapshotSink, MemoryWrite};
use dbadger_core::storage::{
    AppliedState, KvRead, KvWrite, ScanVisitor, StateMachineStore, StateRead, StateWrite,
    StorageResult,
};

use super::disk::{Live, MachineChange, SimDisk};

/// The [`StateMachineStore`] of one boot of a simulated node.
pub struct SimStateMachine {
    disk: Arc<SimDisk>,
    live: Arc<Live>,
    incarnation: u64,
    /// A snapshot is being built (its sink was created): the next save is its own, not an
    /// install.
    building: AtomicBool,
    /// Whether the state held a key when it was last cleared (an install clears it first).
    held_keys_when_cleared: AtomicBool,
}

impl SimStateMachine {
    pub(super) fn new(disk: Arc<SimDisk>, live: Arc<Live>, incarnation: u64) -> SimStateMachine {
        SimStateMachine {
            disk,
            live,
            incarnation,
            building: AtomicBool::new(false),
            held_keys_when_cleared: AtomicBool::new(false),
        }
    }
}

/// A transaction: edits the live view in place (undone if dropped) and records its changes.
pub struct SimWrite<'a> {
    inner: MemoryWrite<'a>,
    changes: Vec<MachineChange>,
    owner: &'a SimStateMachine,
}

impl StateMachineStore for SimStateMachine {
    type Read<'a> = MemoryRead<'a>;
    type Write<'a> = SimWrite<'a>;
    type Snapshot = MemorySnapshot;
    type Sink = MemorySnapshotSink;

    fn read(&self) -> StorageResult<MemoryRead<'_>> {
        self.disk
            .check(self.incarnation, |rates| rates.read, "state read")?;
        self.live.machine.read()
    }

    fn write(&self) -> StorageResult<SimWrite<'_>> {
        self.disk
            .check(self.incarnation, |rates| rates.write, "state write")?;
        Ok(SimWrite {
            inner: self.live.machine.write()?,
            changes: Vec::new(),
            owner: self,
        })
    }

    fn create_snapshot(&self, meta: &SnapshotMeta) -> StorageResult<MemorySnapshotSink> {
        self.building.store(true, Ordering::SeqCst);
        self.live.machine.create_snapshot(meta)
    }

    fn save_snapshot(&self, meta: &SnapshotMeta, snapshot: &MemorySnapshot) -> StorageResult<()> {
        self.disk
            .check(self.incarnation, |rates| rates.write, "snapshot write")?;
        self.disk
            .write_through_machine(self.incarnation, |machine| {
                machine.save_snapshot(meta, snapshot)
            })?;
        self.live.machine.save_snapshot(meta, snapshot)?;
        let built = self.building.swap(false, Ordering::SeqCst);
        let over_data = self.held_keys_when_cleared.load(Ordering::SeqCst);
        self.disk.count(|counters| match (built, over_data) {
            (true, _) => counters.snapshots_built += 1,
            (false, true) => counters.installs_over_data += 1,
            (false, false) => counters.installs_on_empty += 1,
        });
        Ok(())
    }

    fn current_snapshot(&self) -> StorageResult<Option<(SnapshotMeta, MemorySnapshot)>> {
        self.disk
            .check(self.incarnation, |rates| rates.read, "snapshot read")?;
        self.live.machine.current_snapshot()
    }
}

impl KvRead for SimWrite<'_> {
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

impl KvWrite for SimWrite<'_> {
    fn put(&mut self, key: &[u8], value: &[u8], revision: u64) -> StorageResult<()> {
        self.inner.put(key, value, revision)?;
        self.changes
            .push(MachineChange::Put(key.to_vec(), value.to_vec(), revision));
        Ok(())
    }

    fn remove(&mut self, key: &[u8]) -> StorageResult<bool> {
        let existed = self.inner.remove(key)?;
        self.changes.push(MachineChange::Remove(key.to_vec()));
        Ok(existed)
    }

    fn clear(&mut self) -> StorageResult<u64> {
        let count = self.inner.clear()?;
        self.owner
            .held_keys_when_cleared
            .store(count > 0, Ordering::SeqCst);
        // Only an install clears the state before saving a snapshot.
        self.owner.building.store(false, Ordering::SeqCst);
        self.changes.push(MachineChange::Clear);
        Ok(count)
    }
}

impl StateRead for SimWrite<'_> {
    fn applied_state(&self) -> StorageResult<AppliedState> {
        self.inner.applied_state()
    }

    fn staged(&self, seq: u64) -> StorageResult<Option<Vec<u8>>> {
        self.inner.staged(seq)
    }
}

impl StateWrite for SimWrite<'_> {
    fn set_applied_state(&mut self, state: &AppliedState) -> StorageResult<()> {
        self.inner.set_applied_state(state)?;
        self.changes.push(MachineChange::Applied(state.clone()));
        Ok(())
    }

    fn stage(&mut self, seq: u64, bytes: &[u8]) -> StorageResult<()> {
        self.inner.stage(seq, bytes)?;
        self.changes.push(MachineChange::Stage(seq, bytes.to_vec()));
        Ok(())
    }

    fn clear_staged(&mut self) -> StorageResult<()> {
        self.inner.clear_staged()?;
        self.changes.push(MachineChange::ClearStaged);
        Ok(())
    }

    fn commit(self) -> StorageResult<()> {
        let SimWrite {
            inner,
            changes,
            owner,
        } = self;
        inner.commit()?;
        if let Some((observer, node)) = owner.disk.observer() {
            let applied = changes.iter().rev().find_map(|change| match change {
                MachineChange::Applied(state) => Some(state.last_applied),
                _ => None,
            });
            if let Some(applied) = applied {
                observer.applied(node, owner.incarnation, applied.as_ref());
            }
        }
        owner.disk.push_machine(owner.incarnation, changes);
        Ok(())
    }
}
