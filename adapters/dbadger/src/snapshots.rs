//! Snapshots on demand and on a timer: taking one now (for a backup), listing the ones a node
//! keeps, and reading one back (to export it to a file or stream it to a client).
//!
//! Each snapshot is one self-contained, checksummed file (`dbadger_core::snapshot_format`),
//! made durable before it is recorded, and named by the log id it covers.

use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::Weak;
use std::time::Duration;

use dbadger_core::raft_types::SnapshotMeta;
use dbadger_core::restore::RestoreStep;
use dbadger_core::snapshot_format::{snapshot_id, verify};
use dbadger_core::storage::{SnapshotData, StateMachineStore, StateRead};
use dbadger_core::{Outcome, RequestError, StorageError};
use openraft::ServerState;
use openraft::async_runtime::watch::WatchReceiver;
use tokio::time::Instant;

use crate::node::{Node, remaining, stopped, timeout};

/// A snapshot a node keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Its id: `snapshot-<term>-<node>-<index>` of the last log entry it covers.
    pub id: String,
    /// The index of the last log entry it covers (the revision of the newest write in it).
    pub index: u64,
    /// The term of that entry.
    pub term: u64,
    /// The file's size in bytes.
    pub size_bytes: u64,
}

impl SnapshotInfo {
    fn of(meta: &SnapshotMeta, data: &impl SnapshotData) -> SnapshotInfo {
        SnapshotInfo {
            id: snapshot_id(meta),
            index: meta.last_log_id.as_ref().map_or(0, |id| id.index),
            term: meta.last_log_id.as_ref().map_or(0, |id| id.leader_id.term),
            size_bytes: data.size_bytes(),
        }
    }
}

fn storage_failed(error: StorageError) -> RequestError {
    RequestError::Internal(format!("the snapshot store failed: {error}"))
}

/// Whether the timer should take a snapshot now: something was applied since the last one.
pub(crate) fn snapshot_due(applied_index: Option<u64>, snapshot_index: Option<u64>) -> bool {
    applied_index > snapshot_index
}

/// The timer's period for node `id`: `interval`, lengthened by up to a quarter by the node id
/// (not by chance, so the simulator stays reproducible), so that the nodes of one cluster,
/// started together, do not all write their snapshots at the same moment.
pub(crate) fn timer_period(interval: Duration, id: u64) -> Duration {
    interval + interval.mul_f64((id % 1000) as f64 / 4000.0)
}

/// Copies a snapshot stream to `path`: into a file beside it, flushed, verified (every record
/// and the checksum), then renamed into place and the directory flushed.
pub(crate) fn export(input: &mut dyn Read, path: &Path) -> std::io::Result<()> {
    let file_name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"))?;
    let mut partial_name = file_name.to_os_string();
    partial_name.push(".part");
    let partial = path.with_file_name(partial_name);
    let copied = (|| {
        let mut file = File::create(&partial)?;
        std::io::copy(input, &mut file)?;
        file.sync_all()?;
        verify(BufReader::new(File::open(&partial)?))
            .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidData, error))?;
        fs::rename(&partial, path)?;
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        File::open(dir)?.sync_all()
    })();
    if copied.is_err() {
        let _ = fs::remove_file(&partial);
    }
    copied
}

impl<S: StateMachineStore> Node<S> {
    /// Takes a snapshot of everything this node has applied and returns it once it is durable.
    pub(crate) async fn take_snapshot(
        &self,
        deadline: Instant,
    ) -> Result<SnapshotInfo, RequestError> {
        // What the store has applied (openraft's metrics can lag the answers of writes).
        let target = self
            .store
            .read()
            .and_then(|view| view.applied_state())
            .map_err(storage_failed)?
            .last_applied;
        self.raft
            .trigger()
            .snapshot()
            .await
            .map_err(|fatal| stopped(&fatal, Outcome::NotApplied))?;
        if !dbadger_core::restore::snapshot_allowed(&self.store.read().map_err(storage_failed)?)
            .map_err(storage_failed)?
        {
            return Err(RequestError::Refused {
                reason: "a restore is in progress; take the snapshot once it is done".to_owned(),
            });
        }
        let target_index = target.map(|id| id.index);
        self.raft
            .wait(Some(remaining(deadline)))
            .metrics(
                move |metrics| metrics.snapshot.map(|id| id.index) >= target_index,
                "a snapshot covers what was applied",
            )
            .await
            .map_err(|_| timeout(Outcome::NotApplied))?;
        match self.store.current_snapshot().map_err(storage_failed)? {
            Some((meta, data)) => Ok(SnapshotInfo::of(&meta, &data)),
            None => Err(RequestError::Refused {
                reason: "this node holds nothing to snapshot yet".to_owned(),
            }),
        }
    }

    /// Every snapshot this node keeps, newest first.
    pub(crate) fn list_snapshots(&self) -> Result<Vec<SnapshotInfo>, RequestError> {
        Ok(self
            .store
            .snapshots()
            .map_err(storage_failed)?
            .iter()
            .map(|(meta, data)| SnapshotInfo::of(meta, data))
            .collect())
    }

    /// Opens snapshot `id` for reading: its description and its bytes.
    pub(crate) fn open_snapshot(
        &self,
        id: &str,
    ) -> Result<(SnapshotInfo, Box<dyn Read + Send>), RequestError> {
        let snapshots = self.store.snapshots().map_err(storage_failed)?;
        let Some((meta, data)) = snapshots.iter().find(|(meta, _)| snapshot_id(meta) == id) else {
            return Err(RequestError::UnknownSnapshot { id: id.to_owned() });
        };
        let reader = data.open().map_err(storage_failed)?;
        Ok((SnapshotInfo::of(meta, data), reader))
    }
}

/// Takes a snapshot every `interval` (see [`timer_period`]) when anything was applied since the
/// last one, until the node stops or is dropped (the timer holds it only while it looks).
pub(crate) async fn run_snapshot_timer<S: StateMachineStore>(
    node: Weak<Node<S>>,
    interval: Duration,
) {
    let Some(id) = node.upgrade().map(|node| node.id) else {
        return;
    };
    let period = timer_period(interval, id);
    let mut staged_at_last_tick = None;
    loop {
        tokio::time::sleep(period).await;
        let Some(node) = node.upgrade() else {
            return;
        };
        let (applied, snapshot, running) = {
            let metrics = node.raft.metrics();
            let metrics = metrics.borrow_watched();
            (
                metrics.last_applied.map(|id| id.index),
                metrics.snapshot.map(|id| id.index),
                metrics.running_state.is_ok() && metrics.state != ServerState::Shutdown,
            )
        };
        if !running {
            return;
        }
        staged_at_last_tick = node.abandon_stalled_restore(staged_at_last_tick).await;
        if snapshot_due(applied, snapshot) && node.raft.trigger().snapshot().await.is_err() {
            return;
        }
    }
}

impl<S: StateMachineStore> Node<S> {
    /// On the leader: a restore staged at the last tick that has not moved since was abandoned
    /// (its client stopped): abort it, so that snapshots, which a staged restore holds back,
    /// resume. Returns the staged restore to compare with at the next tick.
    async fn abandon_stalled_restore(&self, last_tick: Option<(u64, u64)>) -> Option<(u64, u64)> {
        let staged = self
            .store
            .read()
            .and_then(|view| dbadger_core::restore::staged_restore(&view))
            .ok()
            .flatten();
        let leads = self.raft.metrics().borrow_watched().state == ServerState::Leader;
        if let Some((begin, _)) = staged
            && leads
            && staged == last_tick
        {
            tracing::warn!(begin, "abandoning a restore that made no progress");
            let abort = dbadger_core::Command::Restore(RestoreStep::Abort { begin });
            let deadline = Instant::now() + self.request_timeout;
            let _ = self.write_routed(abort, deadline, false).await;
            return None;
        }
        staged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_is_due_when_something_was_applied_since_the_last() {
        assert!(!snapshot_due(None, None));
        assert!(snapshot_due(Some(0), None));
        assert!(snapshot_due(Some(9), Some(8)));
        assert!(!snapshot_due(Some(8), Some(8)));
    }

    #[test]
    fn timer_periods_spread_over_a_quarter_of_the_interval() {
        let interval = Duration::from_secs(120);
        assert_eq!(timer_period(interval, 0), interval);
        assert_eq!(timer_period(interval, 1000), interval);
        assert_eq!(timer_period(interval, 500), Duration::from_secs(135));
        assert!(timer_period(interval, 999) < interval.mul_f64(1.25));
    }
}
