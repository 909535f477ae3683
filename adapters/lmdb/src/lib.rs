//! LMDB storage for dbadger, through heed, and the log's segment files.
//!
//! This crate owns everything dbadger keeps on disk. [`LmdbStore::open`] opens a node data
//! directory's two LMDB environments and the log's segment files, and hands out the two stores
//! of `dbadger-core`'s storage traits: [`LmdbLogStore`] (the Raft log in segment files, the
//! durable vote in LMDB) and [`LmdbStateMachine`] (key-value data with revisions, applied log
//! id and membership, snapshot files). Raft storage semantics live in `dbadger-core`
//! (`raft_storage`); this crate only moves bytes durably. The on-disk layout and the
//! durability contract are in `docs/on-disk-layout.md` and `docs/durability.md`.
//!
//! # Durability in one paragraph
//!
//! The log's entries, truncations, purges and committed id are checksummed records appended to
//! segment files that were zero-filled ahead of use, by one writer thread that writes whatever
//! is queued together and flushes once (group commit); the append callback fires after the
//! flush. The vote and ids are in the log's LMDB environment; the state machine has an
//! environment of its own (so that neither waits for the other's writer lock across a flush).
//! Both environments run with `MDB_NOMETASYNC`: every commit flushes its data pages, and only
//! commits that must be durable at once also flush the meta page (`force_sync`): votes and
//! snapshot bookkeeping. State-machine commits flush their
//! data but not the meta page, and answer their clients before that flush (reads opened after
//! an answer wait for its commit: see `read_barrier`). After a power loss the last applied
//! transactions may be undone, and openraft re-applies them from the durable log (up to the
//! durable committed id) or from the latest snapshot, whose recording force-syncs the state
//! machine's environment. LMDB's copy-on-write B-tree keeps every committed state intact
//! either way.
//!
//! # Size
//!
//! Each environment's memory map is the configured maximum; the files grow page by page as
//! data arrives. A write that would pass an environment's maximum fails with
//! [`StorageError::Full`] and changes nothing; reads keep working, and reopening with a larger
//! maximum continues. The log's segment files are bounded the same way: a new segment for
//! entries that would take them past the maximum is refused with [`StorageError::Full`] before
//! anything is written (a purge or truncation that needs a new segment is not refused: it
//! frees space). The space the store
//! reports (and nodes admit writes against) is the pages both environments use plus the
//! segment files, so the files together stay near the maximum; free pages of one file cannot
//! hold another's data, so they may exceed it by those free pages.
//!
//! # After a failed write
//!
//! Any failed write (a put that finds the map full, a failed commit or flush) makes the store
//! refuse every later write (reads keep working) until it is reopened: after a failed `fsync`
//! the page cache may hold pages the disk does not, and a log write that succeeded after a
//! failed one would leave a hole in the durable log. Reopening reads what the disk holds.
//! Nodes refuse client writes before the map is full (the storage admission check), so a
//! full map is the last line of defence, not the normal way to say "full".

mod environment;
mod faults;
mod log_store;
mod read_barrier;
mod segment_log;
mod snapshot_files;
mod state_machine;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use dbadger_core::StorageError;
use dbadger_core::storage::StorageResult;

pub use faults::{FaultPoint, InjectedFault, LmdbFaults};
pub use log_store::{LmdbLogStore, LogWriterStats};
pub use snapshot_files::{LmdbSnapshot, LmdbSnapshotSink};
pub use state_machine::{LmdbRead, LmdbStateMachine, LmdbWrite};

/// The on-disk format version this build writes and reads. Version 1 kept the log and the
/// state machine in one environment; version 2 gives the state machine its own; version 3
/// keeps the log's entries in segment files (`lmdb/log/`) instead of LMDB.
pub const FORMAT_VERSION: u32 = 3;

/// The log's environment, under the data directory.
const LOG_ENV_DIR: &str = "lmdb";
/// The state machine's environment, inside the log's directory (so that moving `lmdb/` moves
/// the whole store but its snapshot files).
const STATE_ENV_DIR: &str = "state";
/// Snapshot files, under the data directory.
const SNAPSHOT_DIR: &str = "snapshots";
/// The log's segment files, inside the log's environment directory.
const SEGMENT_DIR: &str = "log";
/// LMDB's data file in an environment's directory.
const LMDB_DATA_FILE: &str = "data.mdb";

/// How an LMDB store is opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LmdbOptions {
    /// The most bytes each of the two database files may grow to (their memory-map size), and
    /// the bound of the space both use together (see "Size" above). Default 64 GiB.
    pub max_size_bytes: u64,
    /// How many snapshot files to keep. Default 2.
    pub snapshot_retain: usize,
    /// The longest a read view may stay open before reads through it fail with
    /// [`StorageError::ReadExpired`], so that a forgotten view cannot pin old pages (and grow
    /// the file) forever. Default 10 minutes, enough to stream a snapshot of many gigabytes.
    pub max_read_duration: Duration,
    /// How many read views may be open at once, across all threads. Default 512.
    pub max_readers: u32,
    /// The most appends and other log writes grouped into one transaction. Default 1024.
    pub max_group_commit: usize,
    /// The most log writes queued for the writer thread; an append or vote beyond it waits
    /// for room (back-pressure on the Raft core instead of unbounded memory). Default 4096.
    pub max_queued_writes: usize,
    /// The longest a vote, truncation or purge waits for its durable commit before it fails
    /// (a wedged disk then stops the node with an error instead of hanging it). Default 30 s.
    pub write_timeout: Duration,
    /// The size of each of the log's segment files, created zero-filled ahead of use (an
    /// entry larger than this gets a segment of its own size). Default 16 MiB.
    pub log_segment_bytes: u64,
}

impl Default for LmdbOptions {
    fn default() -> Self {
        LmdbOptions {
            max_size_bytes: 64 << 30,
            snapshot_retain: 2,
            max_read_duration: Duration::from_secs(600),
            max_readers: 512,
            max_group_commit: 1024,
            max_queued_writes: 4096,
            write_timeout: Duration::from_secs(30),
            log_segment_bytes: 16 << 20,
        }
    }
}

/// One node's two LMDB environments (the log's and the state machine's) and its snapshot
/// directory.
#[derive(Debug)]
pub struct LmdbStore {
    log: LmdbLogStore,
    state_machine: LmdbStateMachine,
    data_dir: PathBuf,
}

impl LmdbStore {
    /// Opens (creating if needed) the store in `data_dir`: `data_dir/lmdb/` holds the log's
    /// LMDB environment, `data_dir/lmdb/state/` the state machine's, and `data_dir/snapshots/`
    /// the snapshot files.
    ///
    /// Opening the same directory twice in one process is refused while the first is open.
    pub fn open(data_dir: &Path, options: LmdbOptions) -> StorageResult<LmdbStore> {
        LmdbStore::open_with_faults(data_dir, options, LmdbFaults::new())
    }

    /// Opens the store like [`LmdbStore::open`], with a fault plan the caller can arm while
    /// the store runs (for tests of the failure paths; see [`LmdbFaults`]).
    pub fn open_with_faults(
        data_dir: &Path,
        options: LmdbOptions,
        faults: LmdbFaults,
    ) -> StorageResult<LmdbStore> {
        let log_dir = data_dir.join(LOG_ENV_DIR);
        let snapshot_dir = data_dir.join(SNAPSHOT_DIR);
        let failure = Arc::default();
        let open = |env_dir: &Path| {
            environment::Shared::open(
                env_dir,
                snapshot_dir.clone(),
                options.clone(),
                faults.clone(),
                Arc::clone(&failure),
            )
            .map(Arc::new)
        };
        let state_dir = log_dir.join(STATE_ENV_DIR);
        let log_existed = log_dir.join(LMDB_DATA_FILE).exists();
        if log_existed && !state_dir.join(LMDB_DATA_FILE).exists() {
            // Opening the log first reports a directory of another format version as such.
            drop(open(&log_dir)?);
            return Err(damaged(
                "data directory",
                "the state machine's environment lmdb/state/ is missing beside an existing log",
            ));
        }
        // The state machine's first: a first start stopped between the two opens leaves a new
        // state environment and no log, which the next start takes as new.
        let state_env = open(&state_dir)?;
        let log_env = open(&log_dir)?;
        // A crash during a snapshot write leaves a partial file; none is ever read.
        snapshot_files::remove_partial_files(&snapshot_dir)?;
        let segments = Arc::new(segment_log::SegmentLog::open(
            &log_dir.join(SEGMENT_DIR),
            Arc::clone(&log_env),
            options.log_segment_bytes,
        )?);
        Ok(LmdbStore {
            log: LmdbLogStore::start(Arc::clone(&log_env), Arc::clone(&segments))?,
            state_machine: LmdbStateMachine::new(state_env, log_env, segments),
            data_dir: data_dir.to_path_buf(),
        })
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Splits the store into its log and state machine (each usable from any thread).
    pub fn into_parts(self) -> (LmdbLogStore, LmdbStateMachine) {
        (self.log, self.state_machine)
    }

    /// Deletes the store in `data_dir` (its `lmdb/` and `snapshots/` directories; nothing else
    /// in `data_dir`), which must not be open. A store that does not exist is not an error.
    pub fn destroy(data_dir: &Path) -> std::io::Result<()> {
        for part in [LOG_ENV_DIR, SNAPSHOT_DIR] {
            match std::fs::remove_dir_all(data_dir.join(part)) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
                _ => {}
            }
        }
        Ok(())
    }

    /// This data directory's node id, drawn once by `generate` on first use and stored
    /// durably, so that a wiped directory never reuses an id.
    pub fn node_id(&self, generate: impl FnOnce() -> u64) -> StorageResult<u64> {
        self.log.node_id(generate)
    }
}

/// An error for a state the code never produces unless the disk was tampered with.
pub(crate) fn damaged(what: &'static str, detail: impl std::fmt::Display) -> StorageError {
    StorageError::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("{what}: {detail}"),
    ))
}
