//! Building and installing snapshots, written once over [`StateMachineStore`].
//!
//! A build reads one consistent view (data and applied state from the same point) and streams
//! it into a new snapshot file, so writes may continue on stores whose views do not block them.
//! An install streams a snapshot file into one write transaction that replaces the whole key
//! space and the applied state; the transaction commits only after the file's checksum verified,
//! so a damaged snapshot leaves the current state untouched.

use std::io::BufWriter;
use std::ops::{Bound, ControlFlow};

use crate::error::{DecodeError, StorageError};
use crate::raft_types::SnapshotMeta;
use crate::snapshot_format::{SnapshotReader, SnapshotWriter};
use crate::storage::{
    AppliedState, KvRead, KvWrite, SnapshotData, SnapshotSink, StateMachineStore, StateRead,
    StateWrite, StorageResult,
};

/// Builds a snapshot of the store's current applied state, saves it as the current snapshot and
/// returns it.
pub fn build_snapshot<S: StateMachineStore>(
    store: &S,
) -> StorageResult<(SnapshotMeta, S::Snapshot)> {
    let view = store.read()?;
    let applied = view.applied_state()?;
    let meta = SnapshotMeta {
        last_log_id: applied.last_applied,
        last_membership: applied.membership,
    };
    let sink = store.create_snapshot(&meta)?;
    let mut writer = SnapshotWriter::new(BufWriter::new(sink), &meta)?;
    let mut failure = None;
    view.scan(
        Bound::Unbounded,
        Bound::Unbounded,
        &mut |key, value, revision| match writer.record(key, value, revision) {
            Ok(()) => ControlFlow::Continue(()),
            Err(error) => {
                failure = Some(error);
                ControlFlow::Break(())
            }
        },
    )?;
    drop(view);
    if let Some(error) = failure {
        return Err(error.into());
    }
    let sink = writer
        .finish()?
        .into_inner()
        .map_err(|error| StorageError::Io(error.into_error()))?;
    let snapshot = sink.finish()?;
    store.save_snapshot(&meta, &snapshot)?;
    Ok((meta, snapshot))
}

/// Replaces the store's whole state with `snapshot` and makes it the current snapshot. The
/// snapshot's own header must describe `meta`. On any error nothing changes.
pub fn install_snapshot<S: StateMachineStore>(
    store: &S,
    meta: &SnapshotMeta,
    snapshot: S::Snapshot,
) -> StorageResult<()> {
    {
        let input = snapshot.open()?;
        let (mut reader, header) = SnapshotReader::open(input).map_err(corrupt)?;
        if header != *meta {
            return Err(StorageError::Contract(format!(
                "snapshot file describes {:?}, not the requested {:?}",
                header.last_log_id, meta.last_log_id
            )));
        }
        let mut txn = store.write()?;
        txn.clear()?;
        while let Some(record) = reader.next_record().map_err(corrupt)? {
            txn.put(&record.key, &record.value, record.revision)?;
        }
        // A snapshot holds no staged restore (none is built while one is staged): any staged
        // here belongs to a state this one replaces.
        txn.clear_staged()?;
        txn.set_applied_state(&AppliedState {
            last_applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
        })?;
        txn.commit()?;
    }
    store.save_snapshot(meta, &snapshot)
}

/// Reads a whole snapshot and checks it (structure, order, count and checksum) without
/// installing it; returns its metadata and record count.
pub fn verify_snapshot(snapshot: &impl SnapshotData) -> StorageResult<(SnapshotMeta, u64)> {
    crate::snapshot_format::verify(snapshot.open()?).map_err(corrupt)
}

fn corrupt(error: DecodeError) -> StorageError {
    StorageError::corrupt("snapshot", error)
}
