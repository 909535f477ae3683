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
}

impl<S> Clone for RaftLog<S> {
    fn clone(&self) -> Self {
        RaftLog {
            store: Arc::clone(&self.store),
        }
    }
}

impl<S: LogStore> RaftLog<S> {
    /// Wraps a log store.
    pub fn new(store: Arc<S>) -> RaftLog<S> {
        RaftLog { store }
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
