//! Snapshot files in `data_dir/snapshots/`: written to a `.part` file, flushed, renamed to
//! `<id>.snap` and the directory flushed, so a crash leaves either no snapshot or a whole one.
//! The current snapshot is recorded (metadata and file name) in LMDB's `snapshot_meta`
//! database; older files beyond the retention count are deleted after a new one is recorded.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use dbadger_core::StorageError;
use dbadger_core::codec::{decode_snapshot_meta, encode_snapshot_meta};
use dbadger_core::raft_types::SnapshotMeta;
use dbadger_core::snapshot_format::{SnapshotReader, snapshot_id};
use dbadger_core::storage::{SnapshotData, SnapshotSink, StorageResult};

use crate::damaged;
use crate::environment::{CURRENT_SNAPSHOT_KEY, Shared};

const SNAPSHOT_SUFFIX: &str = ".snap";
const PARTIAL_SUFFIX: &str = ".part";

/// Distinguishes concurrent partial files of one process.
static PARTIAL_COUNTER: AtomicU64 = AtomicU64::new(0);

fn snapshot_index(file_name: &str) -> Option<u64> {
    let stem = file_name.strip_suffix(SNAPSHOT_SUFFIX)?;
    if stem == "snapshot-empty" {
        return Some(0);
    }
    stem.rsplit('-').next()?.parse().ok()
}

/// A durable snapshot file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LmdbSnapshot {
    path: PathBuf,
    size_bytes: u64,
}

impl LmdbSnapshot {
    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl SnapshotData for LmdbSnapshot {
    fn open(&self) -> StorageResult<Box<dyn io::Read + Send>> {
        Ok(Box::new(BufReader::new(File::open(&self.path)?)))
    }

    fn size_bytes(&self) -> u64 {
        self.size_bytes
    }
}

/// A snapshot file being written.
#[derive(Debug)]
pub struct LmdbSnapshotSink {
    file: BufWriter<File>,
    partial_path: PathBuf,
    final_path: PathBuf,
    written_bytes: u64,
}

impl LmdbSnapshotSink {
    pub(crate) fn create(dir: &Path, meta: &SnapshotMeta) -> StorageResult<LmdbSnapshotSink> {
        let id = snapshot_id(meta);
        let unique = PARTIAL_COUNTER.fetch_add(1, Ordering::Relaxed);
        let partial_path = dir.join(format!(
            "{id}.{}-{unique}{PARTIAL_SUFFIX}",
            std::process::id()
        ));
        let file = File::create_new(&partial_path)?;
        Ok(LmdbSnapshotSink {
            file: BufWriter::with_capacity(1 << 20, file),
            partial_path,
            final_path: dir.join(format!("{id}{SNAPSHOT_SUFFIX}")),
            written_bytes: 0,
        })
    }
}

impl Write for LmdbSnapshotSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.file.write(buf)?;
        self.written_bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl SnapshotSink for LmdbSnapshotSink {
    type Snapshot = LmdbSnapshot;

    fn finish(mut self) -> StorageResult<LmdbSnapshot> {
        self.file.flush()?;
        self.file.get_ref().sync_all()?;
        fs::rename(&self.partial_path, &self.final_path)?;
        sync_directory(&self.final_path)?;
        Ok(LmdbSnapshot {
            path: self.final_path.clone(),
            size_bytes: self.written_bytes,
        })
    }
}

impl Drop for LmdbSnapshotSink {
    fn drop(&mut self) {
        // An abandoned sink leaves no partial file behind (after `finish` it no longer exists).
        let _ = fs::remove_file(&self.partial_path);
    }
}

/// Flushes the directory holding `path`, making a rename in it durable.
fn sync_directory(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// Records `snapshot` as the current one, durably, then deletes the files beyond retention. A
/// snapshot file that lives elsewhere (another store's directory) is first copied in.
pub(crate) fn save_current(
    shared: &Shared,
    meta: &SnapshotMeta,
    snapshot: &LmdbSnapshot,
) -> StorageResult<()> {
    let local;
    let snapshot = if snapshot.path.parent() == Some(shared.snapshot_dir.as_path()) {
        snapshot
    } else {
        let mut sink = LmdbSnapshotSink::create(&shared.snapshot_dir, meta)?;
        io::copy(&mut snapshot.open()?, &mut sink)?;
        local = sink.finish()?;
        &local
    };
    let name = snapshot
        .path
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(|| damaged("snapshot path", snapshot.path.display()))?;
    let encoded_meta = encode_snapshot_meta(meta);
    let mut record = Vec::with_capacity(4 + encoded_meta.len() + name.len());
    record.extend_from_slice(&(encoded_meta.len() as u32).to_be_bytes());
    record.extend_from_slice(&encoded_meta);
    record.extend_from_slice(name.as_bytes());
    let mut txn = shared.write_txn()?;
    shared
        .dbs
        .snapshot_meta
        .put(&mut txn, CURRENT_SNAPSHOT_KEY, &record)
        .map_err(|e| shared.error(e))?;
    shared.commit_durably(txn)?;
    apply_retention(&shared.snapshot_dir, name, shared.options.snapshot_retain)
}

/// The current snapshot and its metadata, if one was recorded.
pub(crate) fn load_current(shared: &Shared) -> StorageResult<Option<(SnapshotMeta, LmdbSnapshot)>> {
    let txn = shared.env.read_txn().map_err(|e| shared.error(e))?;
    let Some(record) = shared
        .dbs
        .snapshot_meta
        .get(&txn, CURRENT_SNAPSHOT_KEY)
        .map_err(|e| shared.error(e))?
    else {
        return Ok(None);
    };
    let (length, rest) = record
        .split_first_chunk::<4>()
        .ok_or_else(|| damaged("snapshot record", "too short"))?;
    let length = u32::from_be_bytes(*length) as usize;
    if length > rest.len() {
        return Err(damaged("snapshot record", "metadata length past the end"));
    }
    let (encoded_meta, name) = rest.split_at(length);
    let meta = decode_snapshot_meta(encoded_meta)
        .map_err(|e| StorageError::corrupt("snapshot meta", e))?;
    let name = std::str::from_utf8(name)
        .map_err(|_| damaged("snapshot record", "file name is not UTF-8"))?;
    let path = shared.snapshot_dir.join(name);
    let size_bytes = fs::metadata(&path)
        .map_err(|e| damaged("current snapshot file", format!("{}: {e}", path.display())))?
        .len();
    Ok(Some((meta, LmdbSnapshot { path, size_bytes })))
}

/// Every snapshot file in the directory, newest (highest log index) first, with the metadata
/// its header records. A file whose header cannot be read is skipped: it is not a snapshot
/// this store wrote whole.
pub(crate) fn list(dir: &Path) -> StorageResult<Vec<(SnapshotMeta, LmdbSnapshot)>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(index) = name.to_str().and_then(snapshot_index) else {
            continue;
        };
        let path = entry.path();
        let Ok((_, meta)) = SnapshotReader::open(BufReader::new(File::open(&path)?)) else {
            continue;
        };
        let size_bytes = entry.metadata()?.len();
        found.push((index, meta, LmdbSnapshot { path, size_bytes }));
    }
    found.sort_by_key(|(index, _, _)| std::cmp::Reverse(*index));
    Ok(found
        .into_iter()
        .map(|(_, meta, snapshot)| (meta, snapshot))
        .collect())
}

/// Keeps the current file and the newest `retain - 1` others (by log index); deletes the rest.
fn apply_retention(dir: &Path, current: &str, retain: usize) -> StorageResult<()> {
    let mut others: Vec<(u64, PathBuf)> = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name == current {
            continue;
        }
        if let Some(index) = snapshot_index(name) {
            others.push((index, entry.path()));
        }
    }
    others.sort_by_key(|(index, _)| std::cmp::Reverse(*index));
    for (_, path) in others.into_iter().skip(retain.saturating_sub(1)) {
        fs::remove_file(path)?;
    }
    Ok(())
}

/// Removes partial files left by a crash during a snapshot write.
pub(crate) fn remove_partial_files(dir: &Path) -> StorageResult<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.ends_with(PARTIAL_SUFFIX))
        {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// File names order by log index, whatever the term and node widths.
    #[test]
    fn snapshot_index_parses_file_names() {
        assert_eq!(snapshot_index("snapshot-3-17-1200.snap"), Some(1200));
        assert_eq!(snapshot_index("snapshot-empty.snap"), Some(0));
        assert_eq!(snapshot_index("snapshot-3-17-1200.4242-1.part"), None);
        assert_eq!(snapshot_index("notes.txt"), None);
    }
}
