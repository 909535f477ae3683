//! Opening an LMDB environment (the log's or the state machine's) and its named databases;
//! mapping heed errors; the small encodings of values stored in LMDB.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use dbadger_core::StorageError;
use dbadger_core::response::Versioned;
use dbadger_core::storage::StorageResult;
use heed::byteorder::BigEndian;
use heed::types::{Bytes, Str, U64};
use heed::{CommitOrAbort, Database, Env, EnvFlags, EnvOpenOptions, MdbError, WithoutTls};

use crate::faults::{FaultPoint, LmdbFaults};
use crate::{FORMAT_VERSION, LmdbOptions, damaged};

/// Log entries: big-endian index (so LMDB's byte order is index order) to codec bytes.
pub(crate) type LogDb = Database<'static, U64<BigEndian>, Bytes>;
/// Named metadata values.
pub(crate) type MetaDb = Database<'static, Str, Bytes>;
/// Key-value data: key to `revision:u64 | value`.
pub(crate) type KvDb = Database<'static, Bytes, Bytes>;

/// Database names, part of the on-disk format.
const LOG_DB: &str = "log";
const RAFT_META_DB: &str = "raft_meta";
const KV_DB: &str = "kv";
const STATE_META_DB: &str = "state_meta";
const SNAPSHOT_META_DB: &str = "snapshot_meta";
const STAGING_DB: &str = "restore_staging";

/// Keys of `raft_meta`.
pub(crate) const FORMAT_VERSION_KEY: &str = "format_version";
pub(crate) const VOTE_KEY: &str = "vote";
pub(crate) const NODE_ID_KEY: &str = "node_id";
/// The id of the cluster the node belongs to (fencing: see the dbadger crate's `fencing`).
pub(crate) const CLUSTER_ID_KEY: &str = "cluster_id";
/// Keys of `state_meta`.
pub(crate) const LAST_APPLIED_KEY: &str = "last_applied";
pub(crate) const MEMBERSHIP_KEY: &str = "membership";
/// Keys of `snapshot_meta`.
pub(crate) const CURRENT_SNAPSHOT_KEY: &str = "current";

/// Map sizes are rounded up to this (a multiple of every page size LMDB supports).
const MAP_SIZE_GRANULE: u64 = 1 << 16;

/// The named databases of one environment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Databases {
    pub(crate) log: LogDb,
    pub(crate) raft_meta: MetaDb,
    pub(crate) kv: KvDb,
    pub(crate) state_meta: MetaDb,
    pub(crate) snapshot_meta: MetaDb,
    /// The restore staging area: pieces of a restore in progress, by number.
    pub(crate) staging: LogDb,
}

/// One LMDB environment (the log's, or the state machine's) with its databases, the snapshot
/// directory, the options, the fault plan and whether a write has failed. Each environment
/// creates every named database; the log uses `log` and `raft_meta`, the state machine the
/// others (and `raft_meta` for its format version).
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) env: Env<WithoutTls>,
    pub(crate) dbs: Databases,
    pub(crate) snapshot_dir: PathBuf,
    pub(crate) options: LmdbOptions,
    faults: LmdbFaults,
    /// Why writes are refused since a commit, a flush or a log write failed (the fsyncgate
    /// rule: after a failed flush the page cache cannot be trusted to match the disk, so
    /// nothing more is written until the store is reopened from what the disk holds).
    /// Shared by the store's two environments: a failed write in either refuses both.
    failure: Arc<Mutex<Option<String>>>,
}

impl Shared {
    /// Opens (creating if needed) the environment in `env_dir`, with snapshot files in
    /// `snapshot_dir`; `failure` is the store's record of a failed write.
    pub(crate) fn open(
        env_dir: &Path,
        snapshot_dir: PathBuf,
        options: LmdbOptions,
        faults: LmdbFaults,
        failure: Arc<Mutex<Option<String>>>,
    ) -> StorageResult<Shared> {
        fs::create_dir_all(env_dir)?;
        fs::create_dir_all(&snapshot_dir)?;
        let map_size = options.max_size_bytes.div_ceil(MAP_SIZE_GRANULE) * MAP_SIZE_GRANULE;
        let map_size = usize::try_from(map_size).map_err(|_| StorageError::Full {
            max_bytes: options.max_size_bytes,
        })?;
        let mut open_options = EnvOpenOptions::new().read_txn_without_tls();
        open_options
            .map_size(map_size)
            .max_dbs(8)
            .max_readers(options.max_readers);
        // SAFETY: NO_META_SYNC keeps LMDB's integrity guarantees (only the meta-page flush is
        // deferred); every commit that must be durable calls `force_sync` before it is
        // acknowledged (see the crate documentation).
        #[allow(unsafe_code)]
        unsafe {
            open_options.flags(EnvFlags::NO_META_SYNC);
        }
        // SAFETY: the environment lives on a local filesystem in a directory dbadger owns; no
        // other code writes its files, and heed refuses a second concurrent open in-process.
        #[allow(unsafe_code)]
        let env = unsafe { open_options.open(env_dir) }.map_err(|e| lmdb_error(e, &options))?;
        env.clear_stale_readers()
            .map_err(|e| lmdb_error(e, &options))?;
        let dbs = create_databases(&env).map_err(|e| lmdb_error(e, &options))?;
        let shared = Shared {
            env,
            dbs,
            snapshot_dir,
            options,
            faults,
            failure,
        };
        shared.check_format_version()?;
        Ok(shared)
    }

    /// Maps a heed error, turning a full map into the typed "storage full" error.
    pub(crate) fn error(&self, error: heed::Error) -> StorageError {
        lmdb_error(error, &self.options)
    }

    /// Opens a write transaction, unless an earlier write failed.
    pub(crate) fn write_txn(&self) -> StorageResult<heed::RwTxn<'_>> {
        self.refuse_after_failure()?;
        self.env.write_txn().map_err(|e| self.error(e))
    }

    /// Fails if an earlier write failed: every write after it is refused until reopen.
    pub(crate) fn refuse_after_failure(&self) -> StorageResult<()> {
        match self.failure_reason().as_ref() {
            None => Ok(()),
            Some(reason) => Err(StorageError::Io(std::io::Error::other(format!(
                "writes are refused until the store is reopened: an earlier write failed ({reason})"
            )))),
        }
    }

    /// Records that a write failed, so that every later one is refused; returns the error.
    pub(crate) fn fail_writes(&self, error: StorageError) -> StorageError {
        self.failure_reason()
            .get_or_insert_with(|| error.to_string());
        error
    }

    fn failure_reason(&self) -> MutexGuard<'_, Option<String>> {
        // An `Option` set once: a panic elsewhere cannot leave it half-written.
        self.failure
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts a call at `point` of the fault plan; fails it if a fault is due.
    pub(crate) fn inject(&self, point: FaultPoint) -> StorageResult<()> {
        self.faults.check(point, self.options.max_size_bytes)
    }

    /// Commits a write transaction, flushing its data pages but not the meta page. A failure
    /// refuses every later write.
    pub(crate) fn commit(&self, txn: heed::RwTxn<'_>) -> StorageResult<()> {
        self.inject(FaultPoint::Commit)
            .and_then(|()| txn.commit().map_err(|e| self.error(e)))
            .map_err(|e| self.fail_writes(e))
    }

    /// Commits a write transaction and flushes it to disk, meta page included. A failure
    /// refuses every later write.
    pub(crate) fn commit_durably(&self, txn: heed::RwTxn<'_>) -> StorageResult<()> {
        self.commit(txn)?;
        self.inject(FaultPoint::Sync)
            .and_then(|()| self.env.force_sync().map_err(|e| self.error(e)))
            .map_err(|e| self.fail_writes(e))
    }

    /// The bytes of the pages every database of this environment uses, without the free
    /// pages LMDB reuses; `None` if the statistics cannot be read.
    pub(crate) fn used_page_bytes(&self) -> Option<u64> {
        let txn = self.env.read_txn().ok()?;
        let dbs = &self.dbs;
        let named = [
            dbs.log.stat(&txn),
            dbs.raft_meta.stat(&txn),
            dbs.kv.stat(&txn),
            dbs.state_meta.stat(&txn),
            dbs.snapshot_meta.stat(&txn),
            dbs.staging.stat(&txn),
        ];
        let mut used = self.env.unnamed_database_stat().non_free_page_size() as u64;
        for stat in named {
            used += stat.ok()?.non_free_page_size() as u64;
        }
        Some(used)
    }

    /// The bytes of the database file up to its last written page.
    pub(crate) fn file_bytes(&self) -> u64 {
        let page_size = u64::from(self.env.unnamed_database_stat().page_size);
        (self.env.info().last_page_number as u64 + 1) * page_size
    }

    fn check_format_version(&self) -> StorageResult<()> {
        let mut txn = self.write_txn()?;
        let stored = self
            .dbs
            .raft_meta
            .get(&txn, FORMAT_VERSION_KEY)
            .map_err(|e| self.error(e))?
            .map(<[u8]>::to_vec);
        match stored {
            Some(bytes) => {
                let version = bytes
                    .try_into()
                    .map(u32::from_be_bytes)
                    .map_err(|_| damaged("format version", "not four bytes"))?;
                if version != FORMAT_VERSION {
                    return Err(StorageError::Contract(format!(
                        "data directory has format version {version}; this build reads only {FORMAT_VERSION}"
                    )));
                }
                Ok(())
            }
            None => {
                let empty = self.dbs.log.is_empty(&txn).map_err(|e| self.error(e))?
                    && self.dbs.kv.is_empty(&txn).map_err(|e| self.error(e))?;
                if !empty {
                    return Err(damaged("format version", "missing in a non-empty store"));
                }
                self.dbs
                    .raft_meta
                    .put(&mut txn, FORMAT_VERSION_KEY, &FORMAT_VERSION.to_be_bytes())
                    .map_err(|e| self.error(e))?;
                self.commit_durably(txn)
            }
        }
    }
}

fn create_databases(env: &Env<WithoutTls>) -> heed::Result<Databases> {
    let txn = env.write_txn()?;
    let databases = env
        .create_databases_and_commit(txn, |opener, txn| -> heed::Result<_> {
            let dbs = (
                opener.create_database(txn, Some(LOG_DB))?,
                opener.create_database(txn, Some(RAFT_META_DB))?,
                opener.create_database(txn, Some(KV_DB))?,
                opener.create_database(txn, Some(STATE_META_DB))?,
                opener.create_database(txn, Some(SNAPSHOT_META_DB))?,
                opener.create_database(txn, Some(STAGING_DB))?,
            );
            Ok(CommitOrAbort::<_, ()>::Commit(dbs))
        })?
        .unwrap_commit();
    let (log, raft_meta, kv, state_meta, snapshot_meta, staging) = databases;
    Ok(Databases {
        log,
        raft_meta,
        kv,
        state_meta,
        snapshot_meta,
        staging,
    })
}

fn lmdb_error(error: heed::Error, options: &LmdbOptions) -> StorageError {
    match error {
        heed::Error::Mdb(MdbError::MapFull) => StorageError::Full {
            max_bytes: options.max_size_bytes,
        },
        heed::Error::Io(io) => StorageError::Io(io),
        // A node on this directory in the same process has not finished closing (or runs).
        heed::Error::EnvAlreadyOpened => StorageError::Io(std::io::Error::new(
            std::io::ErrorKind::ResourceBusy,
            "the data directory is open in this process already",
        )),
        other => StorageError::Io(std::io::Error::other(other.to_string())),
    }
}

/// `revision | value`, the stored form of a key's entry.
pub(crate) fn encode_versioned(value: &[u8], revision: u64) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(8 + value.len());
    bytes.extend_from_slice(&revision.to_be_bytes());
    bytes.extend_from_slice(value);
    bytes
}

/// Splits a stored entry into revision and value.
pub(crate) fn split_versioned(bytes: &[u8]) -> StorageResult<(u64, &[u8])> {
    let (revision, value) = bytes
        .split_first_chunk::<8>()
        .ok_or_else(|| damaged("key-value entry", "shorter than its revision"))?;
    Ok((u64::from_be_bytes(*revision), value))
}

/// Decodes a stored entry.
pub(crate) fn decode_versioned(bytes: &[u8]) -> StorageResult<Versioned> {
    let (revision, value) = split_versioned(bytes)?;
    Ok(Versioned {
        value: value.to_vec(),
        revision,
    })
}
