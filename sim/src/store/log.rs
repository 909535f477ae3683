//! The log store of the simulator: reads and writes the live view, queues changes on the disk.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dbadger_core::raft_types::{LogEntry, LogId, Vote};
use dbadger_core::storage::{FlushCallback, LogBounds, LogStore, StorageResult};

use super::disk::{Live, Pending, SimDisk};

/// The [`LogStore`] of one boot of a simulated node.
pub struct SimLogStore {
    disk: Arc<SimDisk>,
    live: Arc<Live>,
    incarnation: u64,
    /// The committed index this boot last saved (for the observer's incremental checks).
    last_saved_committed: AtomicU64,
}

impl SimLogStore {
    pub(super) fn new(disk: Arc<SimDisk>, live: Arc<Live>, incarnation: u64) -> SimLogStore {
        SimLogStore {
            disk,
            live,
            incarnation,
            last_saved_committed: AtomicU64::new(0),
        }
    }

    fn read_check(&self, what: &str) -> StorageResult<()> {
        self.disk.check(self.incarnation, |rates| rates.read, what)
    }

    fn write_check(&self, what: &str) -> StorageResult<()> {
        self.disk.check(self.incarnation, |rates| rates.write, what)
    }
}

impl LogStore for SimLogStore {
    fn log_bounds(&self) -> StorageResult<LogBounds> {
        self.read_check("log bounds read")?;
        self.live.log.log_bounds()
    }

    fn entries(&self, start: u64, end: u64) -> StorageResult<Vec<LogEntry>> {
        self.read_check("log read")?;
        self.live.log.entries(start, end)
    }

    fn vote(&self) -> StorageResult<Option<Vote>> {
        self.read_check("vote read")?;
        self.live.log.vote()
    }

    fn save_vote(&self, vote: &Vote) -> StorageResult<()> {
        self.write_check("vote write")?;
        self.disk
            .write_through_log(self.incarnation, |log| log.save_vote(vote))?;
        self.live.log.save_vote(vote)?;
        // Only a vote that was saved counts: a failed save leaves the durable vote as it was.
        if let Some((observer, node)) = self.disk.observer() {
            observer.vote_saved(node, vote);
        }
        Ok(())
    }

    fn cluster_id(&self) -> StorageResult<Option<u64>> {
        self.read_check("cluster id read")?;
        self.live.log.cluster_id()
    }

    fn save_cluster_id(&self, id: u64) -> StorageResult<()> {
        self.write_check("cluster id write")?;
        self.disk
            .write_through_log(self.incarnation, |log| log.save_cluster_id(id))?;
        self.live.log.save_cluster_id(id)
    }

    fn committed(&self) -> StorageResult<Option<LogId>> {
        self.read_check("committed read")?;
        self.live.log.committed()
    }

    fn save_committed(&self, committed: Option<&LogId>) -> StorageResult<()> {
        self.write_check("committed write")?;
        self.live.log.save_committed(committed)?;
        if let Some((observer, node)) = self.disk.observer() {
            let through = committed.map_or(0, |id| id.index);
            let from = self.last_saved_committed.swap(through, Ordering::SeqCst);
            let entries = self.live.log.entries(from + 1, through + 1)?;
            observer.committed_saved(node, self.incarnation, committed, &entries);
        }
        self.disk
            .push(self.incarnation, Pending::Committed(committed.copied()));
        Ok(())
    }

    fn append(&self, entries: Vec<LogEntry>, on_durable: FlushCallback) -> StorageResult<()> {
        self.write_check("append")?;
        self.live
            .log
            .append(entries.clone(), FlushCallback::new(|_| {}))?;
        self.disk
            .push(self.incarnation, Pending::Append(entries, Some(on_durable)));
        Ok(())
    }

    fn truncate_after(&self, last_kept: Option<&LogId>) -> StorageResult<()> {
        self.write_check("truncate")?;
        let first_removed = last_kept.map_or(0, |id| id.index + 1);
        let removed = self.live.log.entries(first_removed, u64::MAX)?;
        if !removed.is_empty() {
            self.disk.count(|counters| counters.truncated_suffixes += 1);
            if let Some((observer, node)) = self.disk.observer() {
                observer.truncating(node, &removed);
            }
        }
        self.live.log.truncate_after(last_kept)?;
        self.disk
            .push(self.incarnation, Pending::Truncate(last_kept.copied()));
        Ok(())
    }

    fn purge_through(&self, log_id: &LogId) -> StorageResult<()> {
        self.write_check("purge")?;
        self.live.log.purge_through(log_id)?;
        self.disk.push(self.incarnation, Pending::Purge(*log_id));
        Ok(())
    }
}
