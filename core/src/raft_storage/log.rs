//! `RaftLogStorage` over a [`LogStore`].

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::{AsyncRuntime, LogState, OptionalSend, RaftLogReader};

use crate::error::StorageError;
use crate::raft_types::{LogEntry, LogId, RaftTypes, Vote};
use crate::storage::{FlushCallback, LogStore};

/// The Raft log of one node, as openraft sees it: a shared handle to a [`LogStore`].
#[derive(Debug)]
pub struct RaftLog<S> {
    store: Arc<S>,
    /// The most entry bytes one replication request carries (always at least one entry).
    batch_bytes: usize,
}

impl<S> Clone for RaftLog<S> {
    fn clone(&self) -> Self {
        RaftLog {
            store: Arc::clone(&self.store),
            batch_bytes: self.batch_bytes,
        }
    }
}

/// The default bound on one replication request's entry bytes: the default request limit
/// ([`crate::Limits`]), well inside the message size a node accepts (twice that, plus 1 MiB).
const DEFAULT_BATCH_BYTES: usize = 3 << 20;

/// The most entries read from the store at a time while a replication batch is filled. Reads
/// start with one entry and double while whole reads fit, so large entries are not read only to
/// be left out.
const READ_CHUNK: u64 = 32;

/// The bytes an entry is counted for in a replication batch: its keys and values, plus a
/// fixed allowance for the log id and framing.
fn batch_cost(entry: &LogEntry) -> usize {
    let payload = match &entry.payload {
        openraft::EntryPayload::Normal(command) => command.payload_bytes(),
        _ => 0,
    };
    payload + 64
}

/// How many of `entries`, from the first, fit in `budget` bytes, given that `used` are taken
/// already: at least one when nothing is taken yet, so that a single large entry still goes.
fn fitting(entries: &[LogEntry], mut used: usize, budget: usize) -> usize {
    let mut count = 0;
    for entry in entries {
        let cost = batch_cost(entry);
        if used + cost > budget && !(used == 0 && count == 0) {
            break;
        }
        used += cost;
        count += 1;
    }
    count
}

impl<S: LogStore> RaftLog<S> {
    /// Wraps a log store; replication requests carry at most [`DEFAULT_BATCH_BYTES`].
    pub fn new(store: Arc<S>) -> RaftLog<S> {
        RaftLog {
            store,
            batch_bytes: DEFAULT_BATCH_BYTES,
        }
    }

    /// The same log, with replication requests of at most `bytes` of entries (but always at
    /// least one entry): a node's request limit, so that a follower catching up over large
    /// entries (restore pieces, big batches) gets requests it accepts.
    pub fn with_batch_bytes(self, bytes: usize) -> RaftLog<S> {
        RaftLog {
            batch_bytes: bytes.max(1),
            ..self
        }
    }

    /// The entries from `start` (before `end`) that fit in one replication request.
    fn read_batch(&self, start: u64, end: u64) -> Result<Vec<LogEntry>, StorageError> {
        let mut batch: Vec<LogEntry> = Vec::new();
        let mut used = 0;
        let mut next = start;
        let mut chunk_len = 1;
        while next < end {
            let chunk = self.read_range(next..end.min(next.saturating_add(chunk_len)))?;
            let Some(last) = chunk.last().map(|entry| entry.log_id.index) else {
                break;
            };
            let taken = fitting(&chunk, used, self.batch_bytes);
            used += chunk[..taken].iter().map(batch_cost).sum::<usize>();
            let whole = taken == chunk.len();
            batch.extend(chunk.into_iter().take(taken));
            if !whole {
                break;
            }
            next = last + 1;
            chunk_len = (chunk_len * 2).min(READ_CHUNK);
        }
        Ok(batch)
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// Reads the entries in `range`, checking that they are consecutive: a hole in the middle is
    /// a damaged store, never something to hand to openraft.
    fn read_range(&self, range: impl RangeBounds<u64>) -> Result<Vec<LogEntry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(start) => *start,
            Bound::Excluded(start) => start.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(end) => end.saturating_add(1),
            Bound::Excluded(end) => *end,
            Bound::Unbounded => u64::MAX,
        };
        let entries = self.store.entries(start, end)?;
        for pair in entries.windows(2) {
            if pair[1].log_id.index != pair[0].log_id.index + 1 {
                return Err(StorageError::MissingEntry {
                    index: pair[0].log_id.index + 1,
                });
            }
        }
        Ok(entries)
    }
}

impl<S, RT> RaftLogReader<RaftTypes<RT>> for RaftLog<S>
where
    S: LogStore,
    RT: AsyncRuntime,
{
    async fn try_get_log_entries<RB>(&mut self, range: RB) -> Result<Vec<LogEntry>, io::Error>
    where
        RB: RangeBounds<u64> + Clone + Debug + OptionalSend,
    {
        Ok(self.read_range(range)?)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.store.vote()?)
    }

    /// Replication reads: as many entries from `start` as fit in the batch bound.
    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<LogEntry>, io::Error> {
        Ok(self.read_batch(start, end)?)
    }
}

impl<S, RT> RaftLogStorage<RaftTypes<RT>> for RaftLog<S>
where
    S: LogStore,
    RT: AsyncRuntime,
{
    type LogReader = RaftLog<S>;

    async fn get_log_state(&mut self) -> Result<LogState<RaftTypes<RT>>, io::Error> {
        let bounds = self.store.log_bounds()?;
        Ok(LogState {
            last_purged_log_id: bounds.last_purged,
            last_log_id: bounds.last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        Ok(self.store.save_vote(vote)?)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        Ok(self.store.save_committed(committed.as_ref())?)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.store.committed()?)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<RaftTypes<RT>>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = LogEntry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<LogEntry> = entries.into_iter().collect();
        let on_durable = FlushCallback::new(move |result| {
            callback.io_completed(result.map_err(io::Error::from));
        });
        Ok(self.store.append(entries, on_durable)?)
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        Ok(self.store.truncate_after(last_log_id.as_ref())?)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        Ok(self.store.purge_through(&log_id)?)
    }
}

#[cfg(test)]
mod tests {
    use openraft::vote::RaftLeaderId;

    use super::*;
    use crate::Command;
    use crate::raft_types::{EntryPayload, LeaderId};

    fn entry(index: u64, value_bytes: usize) -> LogEntry {
        LogEntry {
            log_id: LogId::new(LeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(Command::Set {
                key: b"k".to_vec(),
                value: vec![0; value_bytes],
            }),
        }
    }

    #[test]
    fn a_batch_stops_before_its_bound_but_always_takes_one_entry() {
        let small: Vec<LogEntry> = (1..=10).map(|i| entry(i, 35)).collect();
        // Each costs 1 + 35 + 64 = 100 bytes.
        assert_eq!(fitting(&small, 0, 1_000), 10);
        assert_eq!(fitting(&small, 0, 999), 9);
        assert_eq!(fitting(&small, 950, 1_000), 0);
        let big = [entry(1, 10_000), entry(2, 10)];
        assert_eq!(
            fitting(&big, 0, 1_000),
            1,
            "one entry over the bound still goes"
        );
        assert_eq!(fitting(&big, 1, 1_000), 0);
        assert_eq!(fitting(&[], 0, 1_000), 0);
    }

    #[test]
    fn replication_batches_of_large_entries_are_bounded() {
        let store = crate::storage::memory::MemoryLogStore::default();
        let entries: Vec<LogEntry> = (1..=100).map(|i| entry(i, 1 << 20)).collect();
        crate::storage::LogStore::append(&store, entries, FlushCallback::new(|_| {}))
            .expect("append");
        let log = RaftLog::new(Arc::new(store)).with_batch_bytes(3 << 20);
        let batch = log.read_batch(1, 101).expect("read");
        let indices: Vec<u64> = batch.iter().map(|entry| entry.log_id.index).collect();
        assert_eq!(indices, vec![1, 2]);
        let small = RaftLog::new(Arc::clone(log.store())).with_batch_bytes(usize::MAX);
        assert_eq!(small.read_batch(40, 101).expect("read").len(), 61);
        assert_eq!(small.read_batch(101, 200).expect("read").len(), 0);
    }
}
