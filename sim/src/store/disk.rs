//! The simulated disk: a durable image, a queue of pending changes and the live view.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use dbadger_core::StorageError;
use dbadger_core::raft_types::{LogEntry, LogId};
use dbadger_core::storage::memory::{MemoryLogStore, MemoryStateMachine};
use dbadger_core::storage::{
    AppliedState, FlushCallback, KvWrite, LogStore, StateMachineStore, StateRead, StateWrite,
    StorageResult,
};
use madsim::rand::{Rng, thread_rng};

use super::{DiskObserver, SimLogStore, SimStateMachine};

/// Probabilities, per operation, of an injected error.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FaultRates {
    /// A write (append, truncate, purge, vote, state-machine commit) fails before changing
    /// anything.
    pub write: f64,
    /// A sync fails: its callbacks report the error and the pending changes are lost.
    pub sync: f64,
    /// A read (log entries, a state-machine view) fails.
    pub read: f64,
}

/// When appends become durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Within the append call (for the synchronous conformance suite).
    Immediate,
    /// After a random delay in `[min, max]` of simulated time, in a task of the node, so that a
    /// crash can fall between a write and its sync.
    Delayed {
        /// The shortest sync latency.
        min: Duration,
        /// The longest sync latency.
        max: Duration,
    },
}

impl SyncPolicy {
    /// The same policy with every sync `factor` times slower.
    pub fn slowed(self, factor: u32) -> SyncPolicy {
        match self {
            SyncPolicy::Immediate => SyncPolicy::Immediate,
            SyncPolicy::Delayed { min, max } => SyncPolicy::Delayed {
                min: min * factor,
                max: max * factor,
            },
        }
    }
}

/// One change not yet durable.
pub(super) enum Pending {
    Append(Vec<LogEntry>, Option<FlushCallback>),
    Truncate(Option<LogId>),
    Purge(LogId),
    Committed(Option<LogId>),
}

/// One change of a committed state-machine transaction.
#[derive(Clone, Debug)]
pub(super) enum MachineChange {
    Put(Vec<u8>, Vec<u8>, u64),
    Remove(Vec<u8>),
    Clear,
    Applied(AppliedState),
    Stage(u64, Vec<u8>),
    ClearStaged,
}

/// What the node sees: the durable image plus every pending change.
pub(super) struct Live {
    pub(super) log: MemoryLogStore,
    pub(super) machine: MemoryStateMachine,
}

struct DiskState {
    durable_log: MemoryLogStore,
    durable_machine: MemoryStateMachine,
    pending: VecDeque<Pending>,
    /// The last state-machine commit, not yet durable: its data is written but its meta page
    /// is flushed only by the next state-machine commit or a snapshot's record (as LMDB's
    /// state environment, under `MDB_NOMETASYNC`).
    machine_pending: Option<Vec<MachineChange>>,
    incarnation: u64,
    live: Option<Arc<Live>>,
    failed: bool,
    faults: FaultRates,
    /// The next sync fails, whatever the rates say (set by [`SimDisk::fail_next_sync`]).
    fail_next_sync: bool,
    /// The last crash lost state-machine commits, and no boot has replayed them yet.
    lost_state: bool,
    counters: DiskCounters,
}

/// What happened to a disk so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskCounters {
    /// Syncs that made changes durable.
    pub syncs: u64,
    /// Crashes.
    pub crashes: u64,
    /// Pending changes lost at crashes.
    pub lost_changes: u64,
    /// Crashes that left a torn prefix of the pending changes.
    pub torn_crashes: u64,
    /// Injected errors.
    pub injected: u64,
    /// Snapshots built.
    pub snapshots_built: u64,
    /// Snapshots installed on a node that held no key.
    pub installs_on_empty: u64,
    /// Snapshots installed over keys of an older state.
    pub installs_over_data: u64,
    /// Truncations that removed log entries (a conflicting suffix).
    pub truncated_suffixes: u64,
    /// Crashes that lost log entries not yet synced.
    pub crashes_losing_log: u64,
    /// Crashes that lost state-machine commits not yet synced.
    pub crashes_losing_state: u64,
    /// Boots after such a crash whose log held entries past the state's applied index: the
    /// node replays them over the older state.
    pub replays_after_lost_state: u64,
    /// Boots whose durable state machine had applied entries past the durable log's end (its
    /// commits reached the disk before the log's sync did): openraft purges the hole.
    pub boots_with_state_ahead_of_log: u64,
}

impl DiskState {
    /// Makes the pending state-machine commit, if any, durable (the next commit or a snapshot
    /// record flushed its meta page, or an orderly stop did).
    fn flush_machine(&mut self) {
        if let Some(changes) = self.machine_pending.take() {
            make_machine_durable(&self.durable_machine, &changes);
        }
    }
}

/// One node's disk, held by the harness across kills and restarts.
pub struct SimDisk {
    state: Mutex<DiskState>,
    policy: SyncPolicy,
    observer: Mutex<Option<(Arc<dyn DiskObserver>, u64)>>,
}

impl std::fmt::Debug for SimDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimDisk").finish_non_exhaustive()
    }
}

fn apply_durably(log: &MemoryLogStore, change: Pending) -> Option<FlushCallback> {
    // The durable image only replays what the live view already accepted, so these calls
    // cannot fail on contract grounds; an error here would be a bug in the simulator.
    let outcome = match change {
        Pending::Append(entries, callback) => {
            let replayed = log.append(entries, FlushCallback::new(|_| {}));
            return replayed.map(|()| callback).unwrap_or_else(|error| {
                panic!("the durable image refused an append the live view accepted: {error}")
            });
        }
        Pending::Truncate(last_kept) => log.truncate_after(last_kept.as_ref()),
        Pending::Purge(log_id) => log.purge_through(&log_id),
        Pending::Committed(committed) => log.save_committed(committed.as_ref()),
    };
    if let Err(error) = outcome {
        panic!("the durable image refused a change the live view accepted: {error}");
    }
    None
}

/// Makes a state-machine commit durable.
fn make_machine_durable(machine: &MemoryStateMachine, changes: &[MachineChange]) {
    if let Err(error) = replay_machine(machine, changes) {
        panic!("the durable image refused a state-machine commit the live view accepted: {error}");
    }
}

fn replay_machine(machine: &MemoryStateMachine, changes: &[MachineChange]) -> StorageResult<()> {
    let mut write = machine.write()?;
    for change in changes {
        match change {
            MachineChange::Put(key, value, revision) => write.put(key, value, *revision)?,
            MachineChange::Remove(key) => {
                write.remove(key)?;
            }
            MachineChange::Clear => {
                write.clear()?;
            }
            MachineChange::Applied(applied) => write.set_applied_state(applied)?,
            MachineChange::Stage(seq, bytes) => write.stage(*seq, bytes)?,
            MachineChange::ClearStaged => write.clear_staged()?,
        }
    }
    write.commit()
}

/// The durable state machine's applied index and the durable log's last index.
fn durable_indices(state: &DiskState) -> (Option<u64>, Option<u64>) {
    let applied = state
        .durable_machine
        .read()
        .and_then(|view| view.applied_state())
        .ok()
        .and_then(|applied| applied.last_applied.map(|id| id.index));
    let last = state
        .durable_log
        .log_bounds()
        .ok()
        .and_then(|bounds| bounds.last.map(|id| id.index));
    (applied, last)
}

/// Accounts for the pending changes a crash lost (`machine`: a state-machine commit too).
fn count_lost<'a>(state: &mut DiskState, lost: impl Iterator<Item = &'a Pending>, machine: bool) {
    let (mut changes, mut log) = (u64::from(machine), false);
    for change in lost {
        changes += 1;
        if let Pending::Append(entries, _) = change {
            log |= !entries.is_empty();
        }
    }
    state.counters.lost_changes += changes;
    state.counters.crashes_losing_log += u64::from(log);
    state.counters.crashes_losing_state += u64::from(machine);
    state.lost_state |= machine;
}

impl SimDisk {
    /// An empty disk.
    pub fn new(policy: SyncPolicy) -> Arc<SimDisk> {
        Arc::new(SimDisk {
            state: Mutex::new(DiskState {
                durable_log: MemoryLogStore::new(),
                durable_machine: MemoryStateMachine::new(),
                pending: VecDeque::new(),
                machine_pending: None,
                incarnation: 0,
                live: None,
                failed: false,
                faults: FaultRates::default(),
                fail_next_sync: false,
                lost_state: false,
                counters: DiskCounters::default(),
            }),
            policy,
            observer: Mutex::new(None),
        })
    }

    /// Tells `observer` of every change of this disk's stores from now on, as node `node`.
    pub fn observe(&self, observer: Arc<dyn DiskObserver>, node: u64) {
        *self
            .observer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((observer, node));
    }

    /// The observer and the node id it knows this disk by, if one is attached.
    pub(super) fn observer(&self) -> Option<(Arc<dyn DiskObserver>, u64)> {
        self.observer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn state(&self) -> MutexGuard<'_, DiskState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Boots a node on this disk: a fresh live view of the durable image, and the stores that
    /// read and write it. Stores of an earlier boot stop working.
    pub fn open(self: &Arc<Self>) -> (SimLogStore, SimStateMachine) {
        let mut state = self.state();
        state.incarnation += 1;
        state.failed = false;
        state.pending.clear();
        state.machine_pending = None;
        let (applied, last) = durable_indices(&state);
        if std::mem::take(&mut state.lost_state) && last > applied {
            state.counters.replays_after_lost_state += 1;
        }
        if applied > last {
            state.counters.boots_with_state_ahead_of_log += 1;
        }
        let live = Arc::new(Live {
            log: state.durable_log.duplicate(),
            machine: state.durable_machine.duplicate(),
        });
        state.live = Some(Arc::clone(&live));
        let incarnation = state.incarnation;
        drop(state);
        (
            SimLogStore::new(Arc::clone(self), Arc::clone(&live), incarnation),
            SimStateMachine::new(Arc::clone(self), live, incarnation),
        )
    }

    /// The node crashed: its pending changes are lost, except, with `torn`, a random prefix of
    /// them (and of the entries of the first lost append). Callbacks of lost appends never fire.
    pub fn crash(&self, torn: bool) {
        let mut state = self.state();
        state.incarnation += 1;
        state.live = None;
        state.counters.crashes += 1;
        // A torn crash may have got the last state-machine commit's meta page out too.
        if torn && state.machine_pending.is_some() && thread_rng().gen_bool(0.5) {
            state.flush_machine();
        }
        let machine_lost = state.machine_pending.take().is_some();
        let mut pending = std::mem::take(&mut state.pending);
        if torn && !pending.is_empty() {
            state.counters.torn_crashes += 1;
            let keep = thread_rng().gen_range(0..pending.len());
            let lost = pending.split_off(keep);
            for change in pending {
                let change = match change {
                    Pending::Append(entries, _) => Pending::Append(entries, None),
                    other => other,
                };
                apply_durably(&state.durable_log, change);
            }
            // Part of the first lost append may have reached the disk too.
            if let Some(Pending::Append(entries, _)) = lost.front() {
                let part = thread_rng().gen_range(0..=entries.len());
                let prefix = entries[..part].to_vec();
                if !prefix.is_empty() {
                    apply_durably(&state.durable_log, Pending::Append(prefix, None));
                }
            }
            count_lost(&mut state, lost.iter(), machine_lost);
        } else {
            count_lost(&mut state, pending.iter(), machine_lost);
        }
    }

    /// The node stopped in an orderly way: every pending change reached the disk before the
    /// process exited (the callbacks of its appends no longer matter). Stores of the ended boot
    /// stop working.
    pub fn stop(&self) {
        let mut state = self.state();
        state.incarnation += 1;
        state.live = None;
        for change in std::mem::take(&mut state.pending) {
            let change = match change {
                Pending::Append(entries, _) => Pending::Append(entries, None),
                other => other,
            };
            apply_durably(&state.durable_log, change);
        }
        state.flush_machine();
    }

    /// Sets the rates of injected errors.
    pub fn set_faults(&self, faults: FaultRates) {
        self.state().faults = faults;
    }

    /// Makes the next sync fail: its changes are lost and the disk fails until the next boot.
    pub fn fail_next_sync(&self) {
        self.state().fail_next_sync = true;
    }

    /// Whether an injected error hit this disk since the node booted: the node must restart.
    pub fn failed(&self) -> bool {
        self.state().failed
    }

    /// What happened to this disk so far.
    pub fn counters(&self) -> DiskCounters {
        self.state().counters
    }

    /// Counts an event of the stores in the disk's counters.
    pub(super) fn count(&self, event: impl FnOnce(&mut DiskCounters)) {
        event(&mut self.state().counters);
    }

    /// Every key-value pair of the live view (the durable image when the node is down).
    pub fn dump(&self) -> Vec<(Vec<u8>, dbadger_core::Versioned)> {
        let state = self.state();
        match &state.live {
            Some(live) => live.machine.dump(),
            None => state.durable_machine.dump(),
        }
    }

    /// Every log entry the live view holds, with the last purged id.
    pub fn log(&self) -> (Option<LogId>, Vec<LogEntry>) {
        let state = self.state();
        let log = match &state.live {
            Some(live) => &live.log,
            None => &state.durable_log,
        };
        let bounds = log.log_bounds().unwrap_or_default();
        let entries = log.entries(0, u64::MAX).unwrap_or_default();
        (bounds.last_purged, entries)
    }

    /// Fails the operation of a store of boot `incarnation` if that boot is over, or if an
    /// error is injected at the given rate.
    pub(super) fn check(
        &self,
        incarnation: u64,
        rate: impl Fn(&FaultRates) -> f64,
        what: &str,
    ) -> StorageResult<()> {
        let mut state = self.state();
        if state.incarnation != incarnation {
            return Err(StorageError::Injected(format!(
                "{what} on a crashed node's disk"
            )));
        }
        if state.failed {
            return Err(StorageError::Injected(format!(
                "{what} after an earlier failure"
            )));
        }
        let rate = rate(&state.faults);
        if rate > 0.0 && thread_rng().gen_bool(rate.min(1.0)) {
            state.failed = true;
            state.counters.injected += 1;
            return Err(StorageError::Injected(format!("{what} failed")));
        }
        Ok(())
    }

    /// Queues a change made by boot `incarnation`; schedules a sync for appends.
    pub(super) fn push(self: &Arc<Self>, incarnation: u64, change: Pending) {
        let is_append = matches!(change, Pending::Append(..));
        {
            let mut state = self.state();
            if state.incarnation != incarnation || state.failed {
                // A doomed boot: the change can never become durable.
                drop(state);
                if let Pending::Append(_, Some(callback)) = change {
                    callback.flushed(Err(StorageError::Injected(
                        "the disk failed earlier".to_owned(),
                    )));
                }
                return;
            }
            state.pending.push_back(change);
        }
        if !is_append {
            return;
        }
        match self.policy {
            SyncPolicy::Immediate => self.sync(incarnation),
            SyncPolicy::Delayed { min, max } => {
                let latency = if max > min {
                    thread_rng().gen_range(min..=max)
                } else {
                    min
                };
                let disk = Arc::clone(self);
                madsim::task::spawn(async move {
                    madsim::time::sleep(latency).await;
                    disk.sync(incarnation);
                });
            }
        }
    }

    /// Makes every pending change of boot `incarnation` durable, in order, then reports the
    /// appends' flushes. An injected sync error loses them instead and fails the disk.
    pub(super) fn sync(&self, incarnation: u64) {
        let mut callbacks = Vec::new();
        let failure = {
            let mut state = self.state();
            if state.incarnation != incarnation || state.pending.is_empty() {
                return;
            }
            let rate = state.faults.sync;
            let pending = std::mem::take(&mut state.pending);
            let forced = std::mem::take(&mut state.fail_next_sync);
            if forced || (rate > 0.0 && thread_rng().gen_bool(rate.min(1.0))) {
                state.failed = true;
                state.counters.injected += 1;
                state.counters.lost_changes += pending.len() as u64;
                callbacks.extend(pending.into_iter().filter_map(|change| match change {
                    Pending::Append(_, callback) => callback,
                    _ => None,
                }));
                true
            } else {
                state.counters.syncs += 1;
                for change in pending {
                    callbacks.extend(apply_durably(&state.durable_log, change));
                }
                false
            }
        };
        for callback in callbacks {
            callback.flushed(if failure {
                Err(StorageError::Injected("sync failed".to_owned()))
            } else {
                Ok(())
            });
        }
    }

    /// Records a state-machine commit of boot `incarnation`: its data is written, and the
    /// commit before it becomes durable (this commit flushes its meta page).
    pub(super) fn push_machine(&self, incarnation: u64, changes: Vec<MachineChange>) {
        let mut state = self.state();
        if state.incarnation != incarnation || state.failed {
            return;
        }
        state.flush_machine();
        state.machine_pending = Some(changes);
    }

    fn check_boot(state: &DiskState, incarnation: u64) -> StorageResult<()> {
        if state.incarnation != incarnation {
            return Err(StorageError::Injected(
                "write on a crashed node's disk".to_owned(),
            ));
        }
        if state.failed {
            return Err(StorageError::Injected("the disk failed earlier".to_owned()));
        }
        Ok(())
    }

    /// Runs `change` against the durable log directly, after syncing every pending log
    /// change: for votes and the cluster id, which are durable when their call returns.
    pub(super) fn write_through_log(
        &self,
        incarnation: u64,
        change: impl FnOnce(&MemoryLogStore) -> StorageResult<()>,
    ) -> StorageResult<()> {
        self.sync(incarnation);
        let state = self.state();
        SimDisk::check_boot(&state, incarnation)?;
        change(&state.durable_log)
    }

    /// Runs `change` against the durable state machine directly, after making the pending
    /// state-machine commit durable: for snapshots, whose record is flushed when their call
    /// returns (the log is not synced: the state may be durable ahead of the log, as on LMDB).
    pub(super) fn write_through_machine(
        &self,
        incarnation: u64,
        change: impl FnOnce(&MemoryStateMachine) -> StorageResult<()>,
    ) -> StorageResult<()> {
        let mut state = self.state();
        SimDisk::check_boot(&state, incarnation)?;
        state.flush_machine();
        change(&state.durable_machine)
    }
}
