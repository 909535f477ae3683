//! The key-value state machine in LMDB: data, applied log id and membership in one environment
//! (its own, apart from the log's), so one LMDB transaction changes them together.

use std::ops::Bound;
use std::sync::Arc;
use std::time::Instant;

use dbadger_core::StorageError;
use dbadger_core::codec::{
    decode_log_id, decode_stored_membership, encode_log_id, encode_stored_membership,
};
use dbadger_core::raft_types::SnapshotMeta;
use dbadger_core::response::Versioned;
use dbadger_core::storage::{
    AppliedState, KvRead, KvWrite, ScanVisitor, SpaceUsage, StateMachineStore, StateRead,
    StateWrite, StorageResult,
};
use heed::{RoTxn, RwTxn, WithoutTls};

use crate::environment::{
    LAST_APPLIED_KEY, MEMBERSHIP_KEY, Shared, decode_versioned, encode_versioned, split_versioned,
};
use crate::faults::FaultPoint;
use crate::read_barrier::ReadBarrier;
use crate::segment_log::SegmentLog;
use crate::snapshot_files::{LmdbSnapshot, LmdbSnapshotSink};

/// How many pairs a scan visits between checks of its view's age.
const AGE_CHECK_EVERY: usize = 256;

/// The key-value state machine of one node in LMDB.
#[derive(Debug, Clone)]
pub struct LmdbStateMachine {
    /// The state machine's own environment.
    shared: Arc<Shared>,
    /// The log's environment and segments, for the space all use.
    log_env: Arc<Shared>,
    log_segments: Arc<SegmentLog>,
    barrier: Arc<ReadBarrier>,
}

impl LmdbStateMachine {
    pub(crate) fn new(
        shared: Arc<Shared>,
        log_env: Arc<Shared>,
        log_segments: Arc<SegmentLog>,
    ) -> LmdbStateMachine {
        LmdbStateMachine {
            shared,
            log_env,
            log_segments,
            barrier: Arc::default(),
        }
    }

    /// The bytes of the two database files in use (pages up to the last one written) and of
    /// the log's segment files.
    pub fn used_bytes(&self) -> u64 {
        self.shared.file_bytes() + self.log_env.file_bytes() + self.log_segments.bytes_on_disk()
    }
}

impl StateMachineStore for LmdbStateMachine {
    type Read<'a> = LmdbRead<'a>;
    type Write<'a> = LmdbWrite<'a>;
    type Snapshot = LmdbSnapshot;
    type Sink = LmdbSnapshotSink;

    /// Waits while a commit whose answers went out is flushing (see [`crate::read_barrier`]).
    fn read(&self) -> StorageResult<LmdbRead<'_>> {
        self.barrier.pass()?;
        Ok(LmdbRead {
            txn: self
                .shared
                .env
                .read_txn()
                .map_err(|e| self.shared.error(e))?,
            shared: &self.shared,
            opened: Instant::now(),
        })
    }

    fn write(&self) -> StorageResult<LmdbWrite<'_>> {
        Ok(LmdbWrite {
            txn: self.shared.write_txn()?,
            shared: &self.shared,
            barrier: &self.barrier,
        })
    }

    fn create_snapshot(&self, meta: &SnapshotMeta) -> StorageResult<LmdbSnapshotSink> {
        LmdbSnapshotSink::create(&self.shared.snapshot_dir, meta)
    }

    fn save_snapshot(&self, meta: &SnapshotMeta, snapshot: &LmdbSnapshot) -> StorageResult<()> {
        crate::snapshot_files::save_current(&self.shared, meta, snapshot)
    }

    fn current_snapshot(&self) -> StorageResult<Option<(SnapshotMeta, LmdbSnapshot)>> {
        crate::snapshot_files::load_current(&self.shared)
    }

    fn snapshots(&self) -> StorageResult<Vec<(SnapshotMeta, LmdbSnapshot)>> {
        crate::snapshot_files::list(&self.shared.snapshot_dir)
    }

    /// The pages in use by every database of both environments (the log's and this one's),
    /// without the free pages LMDB reuses; `None` if the statistics cannot be read.
    fn space(&self) -> Option<SpaceUsage> {
        Some(SpaceUsage {
            used_bytes: self.shared.used_page_bytes()?
                + self.log_env.used_page_bytes()?
                + self.log_segments.bytes_on_disk(),
            max_bytes: self.shared.options.max_size_bytes,
        })
    }
}

/// A read view: one LMDB read transaction. Writers are never blocked by it; it expires after
/// the configured `max_read_duration`.
pub struct LmdbRead<'a> {
    txn: RoTxn<'a, WithoutTls>,
    shared: &'a Shared,
    opened: Instant,
}

impl std::fmt::Debug for LmdbRead<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LmdbRead")
            .field("opened", &self.opened)
            .finish_non_exhaustive()
    }
}

impl LmdbRead<'_> {
    fn check_age(&self) -> StorageResult<()> {
        let limit = self.shared.options.max_read_duration;
        if self.opened.elapsed() > limit {
            return Err(StorageError::ReadExpired {
                limit_ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
            });
        }
        Ok(())
    }
}

impl KvRead for LmdbRead<'_> {
    fn get(&self, key: &[u8]) -> StorageResult<Option<Versioned>> {
        self.check_age()?;
        get(self.shared, &self.txn, key)
    }

    fn scan(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        visit: &mut ScanVisitor<'_>,
    ) -> StorageResult<()> {
        self.check_age()?;
        scan(
            self.shared,
            &self.txn,
            lower,
            upper,
            visit,
            Some(&|| self.check_age()),
        )
    }
}

impl StateRead for LmdbRead<'_> {
    fn applied_state(&self) -> StorageResult<AppliedState> {
        self.check_age()?;
        applied_state(self.shared, &self.txn)
    }

    fn staged(&self, seq: u64) -> StorageResult<Option<Vec<u8>>> {
        self.check_age()?;
        staged(self.shared, &self.txn, seq)
    }
}

fn staged(shared: &Shared, txn: &RoTxn<'_>, seq: u64) -> StorageResult<Option<Vec<u8>>> {
    shared
        .dbs
        .staging
        .get(txn, &seq)
        .map(|piece| piece.map(<[u8]>::to_vec))
        .map_err(|e| shared.error(e))
}

/// A write transaction: LMDB's single writer; aborted if dropped without commit.
pub struct LmdbWrite<'a> {
    txn: RwTxn<'a>,
    shared: &'a Shared,
    barrier: &'a ReadBarrier,
}

impl std::fmt::Debug for LmdbWrite<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LmdbWrite")
    }
}

impl KvRead for LmdbWrite<'_> {
    fn get(&self, key: &[u8]) -> StorageResult<Option<Versioned>> {
        get(self.shared, &self.txn, key)
    }

    fn scan(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        visit: &mut ScanVisitor<'_>,
    ) -> StorageResult<()> {
        scan(self.shared, &self.txn, lower, upper, visit, None)
    }
}

impl LmdbWrite<'_> {
    /// A write in this transaction failed: every later write of the store is refused (see
    /// `Shared::fail_writes`); the transaction is aborted when dropped.
    fn failed(&self, error: StorageError) -> StorageError {
        self.shared.fail_writes(error)
    }
}

impl KvWrite for LmdbWrite<'_> {
    fn put(&mut self, key: &[u8], value: &[u8], revision: u64) -> StorageResult<()> {
        self.shared
            .inject(FaultPoint::Write)
            .map_err(|e| self.failed(e))?;
        self.shared
            .dbs
            .kv
            .put(&mut self.txn, key, &encode_versioned(value, revision))
            .map_err(|e| self.failed(self.shared.error(e)))
    }

    fn remove(&mut self, key: &[u8]) -> StorageResult<bool> {
        if unstorable(key) {
            return Ok(false);
        }
        self.shared
            .inject(FaultPoint::Write)
            .map_err(|e| self.failed(e))?;
        self.shared
            .dbs
            .kv
            .delete(&mut self.txn, key)
            .map_err(|e| self.failed(self.shared.error(e)))
    }

    fn clear(&mut self) -> StorageResult<u64> {
        self.shared
            .inject(FaultPoint::Write)
            .map_err(|e| self.failed(e))?;
        let kv = self.shared.dbs.kv;
        let count = kv.len(&self.txn).map_err(|e| self.shared.error(e))?;
        kv.clear(&mut self.txn)
            .map_err(|e| self.failed(self.shared.error(e)))?;
        Ok(count)
    }
}

impl StateRead for LmdbWrite<'_> {
    fn applied_state(&self) -> StorageResult<AppliedState> {
        applied_state(self.shared, &self.txn)
    }

    fn staged(&self, seq: u64) -> StorageResult<Option<Vec<u8>>> {
        staged(self.shared, &self.txn, seq)
    }
}

impl StateWrite for LmdbWrite<'_> {
    fn set_applied_state(&mut self, state: &AppliedState) -> StorageResult<()> {
        let meta = self.shared.dbs.state_meta;
        meta.put(
            &mut self.txn,
            LAST_APPLIED_KEY,
            &encode_log_id(state.last_applied.as_ref()),
        )
        .map_err(|e| self.failed(self.shared.error(e)))?;
        meta.put(
            &mut self.txn,
            MEMBERSHIP_KEY,
            &encode_stored_membership(&state.membership),
        )
        .map_err(|e| self.failed(self.shared.error(e)))
    }

    fn stage(&mut self, seq: u64, bytes: &[u8]) -> StorageResult<()> {
        self.shared
            .inject(FaultPoint::Write)
            .map_err(|e| self.failed(e))?;
        self.shared
            .dbs
            .staging
            .put(&mut self.txn, &seq, bytes)
            .map_err(|e| self.failed(self.shared.error(e)))
    }

    fn clear_staged(&mut self) -> StorageResult<()> {
        self.shared
            .dbs
            .staging
            .clear(&mut self.txn)
            .map_err(|e| self.failed(self.shared.error(e)))
    }

    /// Commits with a data flush but no meta-page flush: durable against a process crash at
    /// once, recovered from the log and snapshots after a power loss (see the crate docs).
    fn commit(self) -> StorageResult<()> {
        self.shared.commit(self.txn)
    }

    /// Answers first, then commits with reads held at the barrier until the commit is done.
    fn commit_and_acknowledge(self, acknowledge: impl FnOnce()) -> StorageResult<()> {
        let (shared, txn) = (self.shared, self.txn);
        self.barrier
            .commit_after_acknowledging(acknowledge, || shared.commit(txn))
    }
}

/// True for a key LMDB cannot hold (empty or over 511 bytes): such a key is never stored, so
/// lookups answer "absent" instead of asking LMDB, which would refuse the key's size.
fn unstorable(key: &[u8]) -> bool {
    key.is_empty() || key.len() > dbadger_core::MAX_KEY_BYTES
}

fn get(shared: &Shared, txn: &RoTxn<'_>, key: &[u8]) -> StorageResult<Option<Versioned>> {
    if unstorable(key) {
        return Ok(None);
    }
    match shared.dbs.kv.get(txn, key).map_err(|e| shared.error(e))? {
        Some(bytes) => decode_versioned(bytes).map(Some),
        None => Ok(None),
    }
}

fn scan(
    shared: &Shared,
    txn: &RoTxn<'_>,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
    visit: &mut ScanVisitor<'_>,
    check_age: Option<&dyn Fn() -> StorageResult<()>>,
) -> StorageResult<()> {
    // Every stored key is non-empty, so an empty lower bound is no bound at all and an empty
    // upper bound admits nothing. LMDB refuses zero-length keys as range bounds.
    let lower = match lower {
        Bound::Included([]) | Bound::Excluded([]) => Bound::Unbounded,
        other => other,
    };
    if matches!(upper, Bound::Included([]) | Bound::Excluded([]))
        || dbadger_core::storage::memory::bounds_are_empty(lower, upper)
    {
        return Ok(());
    }
    let range = (lower, upper);
    let iter = shared
        .dbs
        .kv
        .range(txn, &range)
        .map_err(|e| shared.error(e))?;
    for (visited, item) in iter.enumerate() {
        if visited % AGE_CHECK_EVERY == AGE_CHECK_EVERY - 1
            && let Some(check) = check_age
        {
            check()?;
        }
        let (key, bytes) = item.map_err(|e| shared.error(e))?;
        let (revision, value) = split_versioned(bytes)?;
        if visit(key, value, revision).is_break() {
            break;
        }
    }
    Ok(())
}

fn applied_state(shared: &Shared, txn: &RoTxn<'_>) -> StorageResult<AppliedState> {
    let meta = shared.dbs.state_meta;
    let last_applied = match meta
        .get(txn, LAST_APPLIED_KEY)
        .map_err(|e| shared.error(e))?
    {
        Some(bytes) => {
            decode_log_id(bytes).map_err(|e| StorageError::corrupt("applied log id", e))?
        }
        None => None,
    };
    let membership = match meta.get(txn, MEMBERSHIP_KEY).map_err(|e| shared.error(e))? {
        Some(bytes) => {
            decode_stored_membership(bytes).map_err(|e| StorageError::corrupt("membership", e))?
        }
        None => Default::default(),
    };
    Ok(AppliedState {
        last_applied,
        membership,
    })
}
