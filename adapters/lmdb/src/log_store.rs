//! The Raft log, vote and committed id, written by one writer thread that groups whatever is
//! queued into one durable write (group commit): the entries, truncations, purges and
//! committed id to the segment files (`crate::segment_log`) with one flush, the vote and ids
//! to LMDB.
//!
//! Every write (append, vote, committed id, truncation, purge) goes through one FIFO queue, so
//! writes become durable in the order they were made. An append puts its entries in an
//! in-memory overlay first, where readers find them at once (openraft requires appended entries
//! to be readable before they are durable), then queues them; the writer removes them from the
//! overlay once they are committed. `save_vote`, `truncate_after` and `purge_through` wait for
//! their transaction; `append` returns at once and reports durability through its callback.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use dbadger_core::StorageError;
use dbadger_core::codec::{decode_vote, encode_entry, encode_vote};
use dbadger_core::raft_types::{LogEntry, LogId, Vote};
use dbadger_core::storage::{FlushCallback, LogBounds, LogStore, StorageResult};

use crate::damaged;
use crate::environment::{CLUSTER_ID_KEY, NODE_ID_KEY, Shared, VOTE_KEY};
use crate::faults::FaultPoint;
use crate::segment_log::{LogWrite, SegmentLog, check_entry_size};

/// Counters of the writer thread, for benchmarks and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogWriterStats {
    /// Groups written durably (each flushes the segments it wrote once, and LMDB's file twice
    /// if it holds a vote or an id).
    pub durable_commits: u64,
    /// Log entries written.
    pub entries_written: u64,
    /// Queued writes (appends, votes, truncations, ...) carried by those transactions.
    pub writes: u64,
}

#[derive(Debug, Default)]
struct Counters {
    durable_commits: AtomicU64,
    entries_written: AtomicU64,
    writes: AtomicU64,
}

/// Entries appended but not yet committed, and the log's last index as the writers see it.
#[derive(Debug, Default)]
struct Overlay {
    /// index -> (append generation, entry). The generation tells a re-append of the same index
    /// (after a truncation) from the original, so the writer removes only what it committed.
    entries: BTreeMap<u64, (u64, LogEntry)>,
    next_generation: u64,
    /// The index of the last entry appended (or purged, for an empty log); `None` for a log
    /// that never held anything.
    last_index: Option<u64>,
    /// The last committed id saved, until the writer has stored it (its write is not waited
    /// for, but it must read back at once).
    committed: Option<Option<LogId>>,
}

/// A write other than an append.
#[derive(Debug)]
enum MetaWrite {
    Vote(Vote),
    Committed(Option<LogId>),
    TruncateAfter(Option<LogId>),
    Purge(LogId),
    NodeId(u64),
    ClusterId(u64),
}

/// How long writes nobody waits for (committed ids) wait for another write to share their
/// transaction before they are written alone. A committed id written late is no risk: after a
/// restart openraft applies up to the durable one and learns the rest from the leader.
const UNWAITED_WRITE_DELAY: Duration = Duration::from_millis(50);

enum Job {
    Append {
        /// The append's generation in the overlay (see `Overlay::entries`).
        generation: u64,
        /// Each entry's id and encoding.
        entries: Vec<(LogId, Vec<u8>)>,
        done: FlushCallback,
    },
    Meta {
        write: MetaWrite,
        done: Option<Sender<StorageResult<()>>>,
    },
}

/// The Raft log of one node: segment files for the entries, LMDB for the vote.
#[derive(Debug)]
pub struct LmdbLogStore {
    shared: Arc<Shared>,
    segments: Arc<SegmentLog>,
    overlay: Arc<Mutex<Overlay>>,
    counters: Arc<Counters>,
    queue: Option<SyncSender<Job>>,
    writer: Option<JoinHandle<()>>,
}

impl Job {
    /// True for a write whose caller does not wait for its flush.
    fn unwaited(&self) -> bool {
        matches!(self, Job::Meta { done: None, .. })
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Job::Append { entries, .. } => write!(f, "Append({} entries)", entries.len()),
            Job::Meta { write, .. } => write!(f, "{write:?}"),
        }
    }
}

impl LmdbLogStore {
    pub(crate) fn start(
        shared: Arc<Shared>,
        segments: Arc<SegmentLog>,
    ) -> StorageResult<LmdbLogStore> {
        let last_index = durable_last_index(&segments);
        let overlay = Arc::new(Mutex::new(Overlay {
            last_index,
            ..Overlay::default()
        }));
        let counters = Arc::new(Counters::default());
        let (queue, jobs) = mpsc::sync_channel(shared.options.max_queued_writes.max(1));
        let writer = {
            let (shared, segments, overlay, counters) = (
                Arc::clone(&shared),
                Arc::clone(&segments),
                Arc::clone(&overlay),
                Arc::clone(&counters),
            );
            std::thread::Builder::new()
                .name("dbadger-log-writer".to_owned())
                .spawn(move || run_writer(&shared, &segments, &overlay, &counters, &jobs))?
        };
        Ok(LmdbLogStore {
            shared,
            segments,
            overlay,
            counters,
            queue: Some(queue),
            writer: Some(writer),
        })
    }

    /// The writer's counters so far.
    pub fn stats(&self) -> LogWriterStats {
        LogWriterStats {
            durable_commits: self.counters.durable_commits.load(Ordering::Relaxed),
            entries_written: self.counters.entries_written.load(Ordering::Relaxed),
            writes: self.counters.writes.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn node_id(&self, generate: impl FnOnce() -> u64) -> StorageResult<u64> {
        if let Some(id) = self.stored_u64(NODE_ID_KEY, "node id")? {
            return Ok(id);
        }
        let id = generate();
        self.write_and_wait(MetaWrite::NodeId(id))?;
        Ok(id)
    }

    fn stored_u64(&self, key: &str, what: &'static str) -> StorageResult<Option<u64>> {
        let txn = self
            .shared
            .env
            .read_txn()
            .map_err(|e| self.shared.error(e))?;
        let stored = self
            .shared
            .dbs
            .raft_meta
            .get(&txn, key)
            .map_err(|e| self.shared.error(e))?;
        stored
            .map(|bytes| {
                <[u8; 8]>::try_from(bytes)
                    .map(u64::from_be_bytes)
                    .map_err(|_| damaged(what, "not eight bytes"))
            })
            .transpose()
    }

    fn overlay(&self) -> MutexGuard<'_, Overlay> {
        lock(&self.overlay)
    }

    fn send(&self, job: Job) -> StorageResult<()> {
        self.shared.refuse_after_failure()?;
        let queue = self.queue.as_ref().ok_or_else(writer_gone)?;
        queue.send(job).map_err(|_| writer_gone())
    }

    fn write_and_wait(&self, write: MetaWrite) -> StorageResult<()> {
        let (done, outcome) = mpsc::channel();
        self.send(Job::Meta {
            write,
            done: Some(done),
        })?;
        let limit = self.shared.options.write_timeout;
        match outcome.recv_timeout(limit) {
            Ok(result) => result,
            Err(RecvTimeoutError::Disconnected) => Err(writer_gone()),
            Err(RecvTimeoutError::Timeout) => {
                Err(self
                    .shared
                    .fail_writes(StorageError::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("the disk did not finish a write within {limit:?}"),
                    ))))
            }
        }
    }
}

impl Drop for LmdbLogStore {
    fn drop(&mut self) {
        // Closing the queue lets the writer finish what is queued and exit.
        self.queue.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl LogStore for LmdbLogStore {
    fn cluster_id(&self) -> StorageResult<Option<u64>> {
        self.stored_u64(CLUSTER_ID_KEY, "cluster id")
    }

    fn save_cluster_id(&self, id: u64) -> StorageResult<()> {
        self.write_and_wait(MetaWrite::ClusterId(id))
    }

    fn log_bounds(&self) -> StorageResult<LogBounds> {
        // The overlay is read before the segments: an entry the writer writes in between is
        // then in one of the two, never in neither.
        let overlay_last = self
            .overlay()
            .entries
            .values()
            .next_back()
            .map(|(_, e)| e.log_id);
        let (last_purged, stored_last) = self.segments.bounds();
        let last = [overlay_last, stored_last]
            .into_iter()
            .flatten()
            .max_by_key(|id| id.index);
        Ok(LogBounds { last_purged, last })
    }

    fn entries(&self, start: u64, end: u64) -> StorageResult<Vec<LogEntry>> {
        if start >= end {
            return Ok(Vec::new());
        }
        let pending: Vec<LogEntry> = self
            .overlay()
            .entries
            .range(start..end)
            .map(|(_, (_, entry))| entry.clone())
            .collect();
        let mut merged = BTreeMap::new();
        for entry in self.segments.read(start, end)? {
            merged.insert(entry.log_id.index, entry);
        }
        for entry in pending {
            merged.insert(entry.log_id.index, entry);
        }
        Ok(merged.into_values().collect())
    }

    fn vote(&self) -> StorageResult<Option<Vote>> {
        let txn = self
            .shared
            .env
            .read_txn()
            .map_err(|e| self.shared.error(e))?;
        match self
            .shared
            .dbs
            .raft_meta
            .get(&txn, VOTE_KEY)
            .map_err(|e| self.shared.error(e))?
        {
            Some(bytes) => decode_vote(bytes)
                .map(Some)
                .map_err(|e| StorageError::corrupt("vote", e)),
            None => Ok(None),
        }
    }

    fn save_vote(&self, vote: &Vote) -> StorageResult<()> {
        self.write_and_wait(MetaWrite::Vote(*vote))
    }

    fn committed(&self) -> StorageResult<Option<LogId>> {
        if let Some(committed) = self.overlay().committed {
            return Ok(committed);
        }
        Ok(self.segments.committed())
    }

    fn save_committed(&self, committed: Option<&LogId>) -> StorageResult<()> {
        // Written with the next group; nobody waits for it (see the trait's contract).
        self.overlay().committed = Some(committed.copied());
        self.send(Job::Meta {
            write: MetaWrite::Committed(committed.copied()),
            done: None,
        })
    }

    fn append(&self, entries: Vec<LogEntry>, on_durable: FlushCallback) -> StorageResult<()> {
        // Refused before the entries reach the overlay, where they would stay readable.
        self.shared.refuse_after_failure()?;
        let mut overlay = self.overlay();
        let mut next = overlay.last_index.map(|index| index + 1);
        for entry in &entries {
            if next.is_some_and(|expected| entry.log_id.index != expected) {
                return Err(StorageError::Contract(format!(
                    "append of index {} does not follow the last index {:?}",
                    entry.log_id.index, overlay.last_index
                )));
            }
            next = Some(entry.log_id.index + 1);
        }
        let encoded: Vec<(LogId, Vec<u8>)> = entries
            .iter()
            .map(|entry| (entry.log_id, encode_entry(entry)))
            .collect();
        for (_, bytes) in &encoded {
            // Refused here, for this append alone (in the writer it would fail the store).
            check_entry_size(bytes.len())?;
        }
        let generation = overlay.next_generation;
        overlay.next_generation += 1;
        let last_before = overlay.last_index;
        for entry in entries {
            let index = entry.log_id.index;
            overlay.entries.insert(index, (generation, entry));
            overlay.last_index = Some(index);
        }
        drop(overlay);
        let sent = self.send(Job::Append {
            generation,
            entries: encoded,
            done: on_durable,
        });
        if sent.is_err() {
            // Never queued: the entries must not stay readable.
            let mut overlay = self.overlay();
            overlay.entries.retain(|_, (g, _)| *g != generation);
            if overlay.next_generation == generation + 1 {
                overlay.last_index = last_before;
            }
        }
        sent
    }

    fn truncate_after(&self, last_kept: Option<&LogId>) -> StorageResult<()> {
        self.write_and_wait(MetaWrite::TruncateAfter(last_kept.copied()))?;
        let mut overlay = self.overlay();
        let first_removed = last_kept.map_or(0, |id| id.index + 1);
        overlay.entries.split_off(&first_removed);
        let purged = self.segments.bounds().0.map(|id| id.index);
        overlay.last_index = last_kept.map(|id| id.index).max(purged);
        Ok(())
    }

    fn purge_through(&self, log_id: &LogId) -> StorageResult<()> {
        self.write_and_wait(MetaWrite::Purge(*log_id))?;
        let mut overlay = self.overlay();
        overlay.last_index = overlay.last_index.max(Some(log_id.index));
        Ok(())
    }
}

fn lock(overlay: &Mutex<Overlay>) -> MutexGuard<'_, Overlay> {
    // Every overlay update is a few map operations that cannot leave it inconsistent, so a
    // panic elsewhere while the lock was held does not make the data unusable.
    overlay
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn writer_gone() -> StorageError {
    StorageError::Io(std::io::Error::new(
        std::io::ErrorKind::BrokenPipe,
        "the log writer thread has stopped",
    ))
}

/// The index of the last entry written, or of the last purged one for an empty log.
fn durable_last_index(segments: &SegmentLog) -> Option<u64> {
    segments.bounds().1.map(|id| id.index)
}

/// The writer thread: takes whatever is queued (up to the group limit), writes it in one
/// transaction, flushes, then reports to every waiter.
fn run_writer(
    shared: &Shared,
    segments: &SegmentLog,
    overlay: &Mutex<Overlay>,
    counters: &Counters,
    jobs: &Receiver<Job>,
) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        take_queued(jobs, &mut group, shared.options.max_group_commit);
        if group.iter().all(Job::unwaited) {
            // Only writes nobody waits for (a leader's committed id, saved after each commit):
            // they ride with the next write instead of paying a durable commit of their own
            // that the next append would queue behind.
            if let Ok(job) = jobs.recv_timeout(UNWAITED_WRITE_DELAY) {
                group.push(job);
                take_queued(jobs, &mut group, shared.options.max_group_commit);
            }
        }
        // After a failed group nothing more is written (see `Shared::fail_writes`): a later
        // group that committed would leave a hole where the failed appends were.
        let outcome = write_group(shared, segments, &group).map_err(|e| shared.fail_writes(e));
        forget_written(overlay, &group);
        if outcome.is_err() {
            // Reads show what the disk holds plus appends still queued (which will fail too).
            let durable = durable_last_index(segments);
            let mut overlay = lock(overlay);
            overlay.last_index = overlay.entries.keys().next_back().copied().max(durable);
        }
        if outcome.is_ok() {
            counters.durable_commits.fetch_add(1, Ordering::Relaxed);
            counters
                .writes
                .fetch_add(group.len() as u64, Ordering::Relaxed);
            let entries: usize = group
                .iter()
                .map(|job| match job {
                    Job::Append { entries, .. } => entries.len(),
                    Job::Meta { .. } => 0,
                })
                .sum();
            counters
                .entries_written
                .fetch_add(entries as u64, Ordering::Relaxed);
        }
        for job in group {
            let result = match &outcome {
                Ok(()) => Ok(()),
                Err(error) => Err(copy_error(error)),
            };
            match job {
                Job::Append { done, .. } => done.flushed(result),
                Job::Meta {
                    done: Some(done), ..
                } => {
                    let _ = done.send(result);
                }
                Job::Meta { done: None, .. } => {}
            }
        }
    }
}

/// Moves whatever is queued into `group`, up to `limit` writes, without waiting.
fn take_queued(jobs: &Receiver<Job>, group: &mut Vec<Job>, limit: usize) {
    while group.len() < limit {
        match jobs.try_recv() {
            Ok(job) => group.push(job),
            Err(_) => break,
        }
    }
}

/// Writes a group: its log writes to the segments, flushed once; then, if it has any, its
/// other writes (vote, ids) in one durable LMDB transaction. A segment purge is deleted only
/// once the purge is durable.
fn write_group(shared: &Shared, segments: &SegmentLog, group: &[Job]) -> StorageResult<()> {
    shared.refuse_after_failure()?;
    let mut log_writes = Vec::new();
    // The vote and ids, as LMDB keys and values.
    let mut meta = Vec::new();
    for job in group {
        match job {
            Job::Append { entries, .. } => {
                log_writes.extend(entries.iter().map(|(log_id, encoded)| LogWrite::Entry {
                    log_id: *log_id,
                    encoded,
                }));
            }
            Job::Meta { write, .. } => match write {
                MetaWrite::Committed(committed) => log_writes.push(LogWrite::Committed(*committed)),
                MetaWrite::TruncateAfter(last_kept) => {
                    log_writes.push(LogWrite::TruncateAfter(*last_kept));
                }
                MetaWrite::Purge(log_id) => log_writes.push(LogWrite::Purge(*log_id)),
                MetaWrite::Vote(vote) => meta.push((VOTE_KEY, encode_vote(vote))),
                MetaWrite::NodeId(id) => meta.push((NODE_ID_KEY, id.to_be_bytes().to_vec())),
                MetaWrite::ClusterId(id) => {
                    meta.push((CLUSTER_ID_KEY, id.to_be_bytes().to_vec()));
                }
            },
        }
    }
    if !log_writes.is_empty() {
        segments.write(&log_writes)?;
        segments.sync()?;
    }
    if !meta.is_empty() {
        let mut txn = shared.write_txn()?;
        for (key, value) in meta {
            shared.inject(FaultPoint::Write)?;
            shared
                .dbs
                .raft_meta
                .put(&mut txn, key, &value)
                .map_err(|e| shared.error(e))?;
        }
        shared.commit_durably(txn)?;
    }
    if log_writes
        .iter()
        .any(|write| matches!(write, LogWrite::Purge(_)))
    {
        segments.remove_purged_segments()?;
    }
    Ok(())
}

/// Drops the appends of a written (or failed) group from the overlay, unless a later append
/// replaced them.
fn forget_written(overlay: &Mutex<Overlay>, group: &[Job]) {
    let mut overlay = lock(overlay);
    for job in group {
        if let Job::Append {
            generation,
            entries,
            ..
        } = job
        {
            for (log_id, _) in entries {
                let index = log_id.index;
                if overlay
                    .entries
                    .get(&index)
                    .is_some_and(|(g, _)| g == generation)
                {
                    overlay.entries.remove(&index);
                }
            }
        }
    }
}

/// Errors are not `Clone`; every waiter of a failed group gets an equivalent one.
fn copy_error(error: &StorageError) -> StorageError {
    match error {
        StorageError::Full { max_bytes } => StorageError::Full {
            max_bytes: *max_bytes,
        },
        StorageError::Io(io) => StorageError::Io(std::io::Error::new(io.kind(), io.to_string())),
        other => StorageError::Io(std::io::Error::other(other.to_string())),
    }
}
