//! The Raft log's entries, truncations, purges and committed id, in segment files that the
//! log writer fills in order and flushes once per group: one `fdatasync` of preallocated,
//! zero-filled space per durable write, where an LMDB commit needs two (data pages, then the
//! meta page) and grows its file. The layout is in `docs/on-disk-layout.md`; the records and
//! their checksum chain in [`record`]; segment files and their preparation in [`segment`].
//!
//! Only the log writer thread writes ([`SegmentLog::write`], [`SegmentLog::sync`]); readers
//! find entries through an in-memory index of where each one lies, and read them with
//! positioned reads. Opening replays every segment to rebuild the index (module [`mod@replay`]).

mod record;
mod replay;
mod segment;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use dbadger_core::StorageError;
use dbadger_core::codec::decode_entry;
use dbadger_core::raft_types::{LogEntry, LogId};
use dbadger_core::storage::StorageResult;

use crate::damaged;
use crate::environment::Shared;
use crate::faults::FaultPoint;
use record::{HEADER_BYTES, Record, encode_entry_record, encode_record, segment_seed};
use replay::replay;
use segment::{Preparer, segment_path, sync_dir};

/// Room kept at the end of every segment for its `End` record.
const END_RESERVE: u64 = HEADER_BYTES as u64;
/// Segment sizes are rounded up to this.
const SEGMENT_GRANULE: u64 = 4096;
/// The smallest segment.
const MIN_SEGMENT_BYTES: u64 = 4 * SEGMENT_GRANULE;
/// The largest entry a record holds (its length field is 32 bits).
const MAX_RECORD_BYTES: usize = u32::MAX as usize - 64;
/// Room for a segment's checkpoint record (two log ids and the segment number, framed).
const CHECKPOINT_ROOM: u64 = 128;

/// One write of the log, in the order the writer received them.
#[derive(Debug)]
pub(crate) enum LogWrite<'a> {
    /// An entry, with its codec encoding.
    Entry {
        log_id: LogId,
        encoded: &'a [u8],
    },
    TruncateAfter(Option<LogId>),
    Purge(LogId),
    Committed(Option<LogId>),
}

/// Where an entry lies.
#[derive(Debug, Clone, Copy)]
struct Location {
    log_id: LogId,
    segment: u64,
    offset: u64,
    len: usize,
}

/// One segment file of the log.
#[derive(Debug)]
struct Segment {
    file: Arc<File>,
    size: u64,
}

/// Where the next record goes.
#[derive(Debug, Clone, Copy)]
struct Tail {
    segment: u64,
    offset: u64,
    crc: u32,
    size: u64,
}

#[derive(Debug, Default)]
struct State {
    entries: BTreeMap<u64, Location>,
    segments: BTreeMap<u64, Segment>,
    last_purged: Option<LogId>,
    committed: Option<LogId>,
    /// `None`: the next write starts a new segment (a new log, or the last one is sealed).
    tail: Option<Tail>,
    /// The number the next segment gets.
    next_segment: u64,
    /// Segments written since the last flush.
    unflushed: BTreeSet<u64>,
    /// What the records written since the last flush change, applied once they are flushed.
    unsynced_changes: Vec<Change>,
}

/// What a record changes in the log's state.
#[derive(Debug, Clone, Copy)]
enum Change {
    Checkpoint {
        last_purged: Option<LogId>,
        committed: Option<LogId>,
    },
    Entry(Location),
    TruncateAfter(Option<LogId>),
    Purge(LogId),
    Committed(Option<LogId>),
}

impl State {
    fn apply(&mut self, change: Change) {
        match change {
            Change::Checkpoint {
                last_purged,
                committed,
            } => {
                if let Some(purged) = last_purged {
                    self.purge(purged);
                }
                self.committed = committed;
            }
            Change::Entry(location) => {
                self.entries.insert(location.log_id.index, location);
            }
            Change::TruncateAfter(last_kept) => match last_kept.map(|id| id.index.checked_add(1)) {
                None => self.entries.clear(),
                Some(Some(first_removed)) => drop(self.entries.split_off(&first_removed)),
                Some(None) => {}
            },
            Change::Purge(log_id) => self.purge(log_id),
            Change::Committed(committed) => self.committed = committed,
        }
    }

    fn purge(&mut self, log_id: LogId) {
        self.entries = if log_id.index == u64::MAX {
            BTreeMap::new()
        } else {
            self.entries.split_off(&(log_id.index + 1))
        };
        if self
            .last_purged
            .is_none_or(|purged| purged.index < log_id.index)
        {
            self.last_purged = Some(log_id);
        }
    }

    /// The bytes of the segment files.
    fn segment_bytes(&self) -> u64 {
        self.segments.values().map(|segment| segment.size).sum()
    }

    fn last(&self) -> Option<LogId> {
        self.entries
            .values()
            .next_back()
            .map(|location| location.log_id)
    }
}

/// Records framed for the tail segment but not yet written there, and what they change.
#[derive(Debug)]
struct Batch {
    tail: Option<Tail>,
    bytes: Vec<u8>,
    crc: u32,
    changes: Vec<Change>,
}

impl Batch {
    fn at(tail: Option<Tail>) -> Batch {
        Batch {
            tail,
            bytes: Vec::new(),
            crc: tail.map_or(0, |tail| tail.crc),
            changes: Vec::new(),
        }
    }

    /// Frames `write` after the batch's records, straight into its bytes, and notes what it
    /// changes (an entry's location assumes the batch goes at its tail).
    fn push(&mut self, write: &LogWrite<'_>) {
        let (crc, change) = match write {
            LogWrite::Entry { log_id, encoded } => {
                let (segment, offset) =
                    self.tail.map_or((0, 0), |tail| (tail.segment, tail.offset));
                let location = Location {
                    log_id: *log_id,
                    segment,
                    offset: offset + (self.bytes.len() + HEADER_BYTES) as u64,
                    len: encoded.len(),
                };
                let crc = encode_entry_record(&mut self.bytes, self.crc, encoded);
                (crc, Change::Entry(location))
            }
            LogWrite::TruncateAfter(last_kept) => (
                encode_record(
                    &mut self.bytes,
                    self.crc,
                    &Record::TruncateAfter(*last_kept),
                ),
                Change::TruncateAfter(*last_kept),
            ),
            LogWrite::Purge(log_id) => (
                encode_record(&mut self.bytes, self.crc, &Record::Purge(*log_id)),
                Change::Purge(*log_id),
            ),
            LogWrite::Committed(committed) => (
                encode_record(&mut self.bytes, self.crc, &Record::Committed(*committed)),
                Change::Committed(*committed),
            ),
        };
        self.crc = crc;
        self.changes.push(change);
    }

    /// `writes` framed as one group (their records, then a `Commit`) after `tail`.
    fn group(tail: Option<Tail>, writes: &[LogWrite<'_>]) -> Batch {
        let mut batch = Batch::at(tail);
        for write in writes {
            batch.push(write);
        }
        batch.crc = encode_record(&mut batch.bytes, batch.crc, &Record::Commit);
        batch
    }

    /// Whether the batch fits in its tail segment, with room left for the `End` record.
    fn fits(&self) -> bool {
        self.tail
            .is_some_and(|tail| tail.offset + self.bytes.len() as u64 + END_RESERVE <= tail.size)
    }
}

/// The segment files of one log.
#[derive(Debug)]
pub(crate) struct SegmentLog {
    dir: PathBuf,
    shared: Arc<Shared>,
    segment_bytes: u64,
    state: Mutex<State>,
    preparer: Preparer,
}

impl SegmentLog {
    /// Opens (creating if needed) the log in `dir`, replaying its segments.
    pub(crate) fn open(
        dir: &Path,
        shared: Arc<Shared>,
        segment_bytes: u64,
    ) -> StorageResult<SegmentLog> {
        if !dir.exists() {
            std::fs::create_dir_all(dir)?;
            // The new directory's own entry must survive a crash with the segments in it.
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
        }
        // Small stores (tests, tiny disks) get segments small enough to leave room for data.
        let segment_bytes =
            round_up(segment_bytes.min(shared.options.max_size_bytes / 16)).max(MIN_SEGMENT_BYTES);
        let state = replay(dir)?;
        let preparer = Preparer::start(dir, segment_bytes)?;
        Ok(SegmentLog {
            dir: dir.to_path_buf(),
            shared,
            segment_bytes,
            state: Mutex::new(state),
            preparer,
        })
    }

    /// The bytes of the segment files, the one prepared ahead included.
    pub(crate) fn bytes_on_disk(&self) -> u64 {
        self.lock().segment_bytes() + self.segment_bytes
    }

    /// The last purged id and the last entry's id (the last purged for an empty log).
    pub(crate) fn bounds(&self) -> (Option<LogId>, Option<LogId>) {
        let state = self.lock();
        (state.last_purged, state.last().or(state.last_purged))
    }

    /// The last committed id written.
    pub(crate) fn committed(&self) -> Option<LogId> {
        self.lock().committed
    }

    /// The entries with `start <= index < end` written so far.
    pub(crate) fn read(&self, start: u64, end: u64) -> StorageResult<Vec<LogEntry>> {
        if start >= end {
            return Ok(Vec::new());
        }
        let wanted: Vec<(Location, Arc<File>)> = {
            let state = self.lock();
            state
                .entries
                .range(start..end)
                .map(|(_, location)| {
                    let file = state
                        .segments
                        .get(&location.segment)
                        .map(|segment| Arc::clone(&segment.file));
                    file.map(|file| (*location, file))
                        .ok_or_else(|| damaged("log", "an entry's segment is missing"))
                })
                .collect::<StorageResult<_>>()?
        };
        let mut entries = Vec::with_capacity(wanted.len());
        let mut buffer = Vec::new();
        for (location, file) in wanted {
            buffer.resize(location.len, 0);
            file.read_exact_at(&mut buffer, location.offset)?;
            let entry = decode_entry(&buffer).map_err(|e| StorageError::corrupt("log entry", e))?;
            entries.push(entry);
        }
        Ok(entries)
    }

    /// Writes `writes` after what the log holds, in order, as one record group that replay
    /// applies whole or not at all (durable after [`SegmentLog::sync`]). A group is never split
    /// across segments: one that does not fit in the tail segment starts the next one, which
    /// is made large enough for it. A group that would take the segment files past the store's
    /// maximum is refused before anything is written.
    pub(crate) fn write(&self, writes: &[LogWrite<'_>]) -> StorageResult<()> {
        for write in writes {
            if let LogWrite::Entry { encoded, .. } = write {
                check_entry_size(encoded.len())?;
            }
        }
        let mut state = self.lock();
        let mut batch = Batch::group(state.tail, writes);
        if !batch.fits() {
            // Only groups that add entries are held to the maximum: a purge or a truncation
            // frees space and must not be refused for lack of it.
            let adds = writes
                .iter()
                .any(|write| matches!(write, LogWrite::Entry { .. }));
            state = self.roll_over(state, batch.bytes.len() as u64, adds)?;
            batch = Batch::group(state.tail, writes);
        }
        self.write_batch(&mut state, &mut batch)
    }

    /// Writes the batch's records at the tail; what they change is applied by the next
    /// [`SegmentLog::sync`].
    fn write_batch(&self, state: &mut State, batch: &mut Batch) -> StorageResult<()> {
        let Some(tail) = batch.tail else {
            return Ok(());
        };
        if batch.bytes.is_empty() {
            return Ok(());
        }
        self.write_at(state, tail.segment, tail.offset, &batch.bytes)?;
        // Readers see the changes once they are durable (until then the log store's overlay
        // has the entries): after a failed flush the state shows what the disk holds.
        state.unsynced_changes.append(&mut batch.changes);
        let tail = Tail {
            offset: tail.offset + batch.bytes.len() as u64,
            crc: batch.crc,
            ..tail
        };
        state.tail = Some(tail);
        *batch = Batch::at(Some(tail));
        Ok(())
    }

    fn write_at(
        &self,
        state: &mut State,
        segment: u64,
        offset: u64,
        bytes: &[u8],
    ) -> StorageResult<()> {
        self.shared.inject(FaultPoint::Write)?;
        let file = state
            .segments
            .get(&segment)
            .ok_or_else(|| damaged("log", "the tail segment is missing"))?;
        file.file.write_all_at(bytes, offset)?;
        state.unflushed.insert(segment);
        Ok(())
    }

    /// Seals the tail segment with an `End` record and starts the next one, large enough for
    /// a group of `needed` bytes, with a checkpoint of the state so far. The state lock is
    /// released while the segment is taken (it may wait for the preparation, and renaming
    /// flushes the directory): only the writer changes the state, and readers need no tail.
    fn roll_over<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
        needed: u64,
        held_to_maximum: bool,
    ) -> StorageResult<MutexGuard<'a, State>> {
        let size = round_up(needed + CHECKPOINT_ROOM + END_RESERVE).max(self.segment_bytes);
        let max_bytes = self.shared.options.max_size_bytes;
        if held_to_maximum && state.segment_bytes() + self.segment_bytes + size > max_bytes {
            return Err(StorageError::Full { max_bytes });
        }
        if let Some(tail) = state.tail.take() {
            let mut end = Vec::new();
            encode_record(&mut end, tail.crc, &Record::End);
            self.write_at(&mut state, tail.segment, tail.offset, &end)?;
        }
        let number = state.next_segment.max(1);
        drop(state);
        let (file, size) = self.preparer.take_as_segment(size, number)?;
        let mut state = self.lock();
        state.next_segment = number.saturating_add(1);
        state.segments.insert(
            number,
            Segment {
                file: Arc::new(file),
                size,
            },
        );
        let mut checkpoint = Vec::new();
        let crc = encode_record(
            &mut checkpoint,
            segment_seed(number),
            &Record::Checkpoint {
                segment: number,
                last_purged: state.last_purged,
                committed: state.committed,
            },
        );
        self.write_at(&mut state, number, 0, &checkpoint)?;
        state.tail = Some(Tail {
            segment: number,
            offset: checkpoint.len() as u64,
            crc,
            size,
        });
        Ok(state)
    }

    /// Flushes every segment written since the last flush, oldest first, then applies what
    /// the flushed records change.
    pub(crate) fn sync(&self) -> StorageResult<()> {
        let files: Vec<Arc<File>> = {
            let mut state = self.lock();
            let unflushed = std::mem::take(&mut state.unflushed);
            unflushed
                .iter()
                .filter_map(|number| {
                    state
                        .segments
                        .get(number)
                        .map(|segment| Arc::clone(&segment.file))
                })
                .collect()
        };
        for file in files {
            self.shared.inject(FaultPoint::Sync)?;
            file.sync_data()?;
        }
        let mut state = self.lock();
        let changes = std::mem::take(&mut state.unsynced_changes);
        for change in changes {
            state.apply(change);
        }
        Ok(())
    }

    /// Deletes the segments that hold no entry any more (after a purge is durable), oldest
    /// first. Should a crash keep only some of the deletions, replay ignores the segments
    /// before the gap they leave.
    pub(crate) fn remove_purged_segments(&self) -> StorageResult<()> {
        let removable: Vec<u64> = {
            let mut state = self.lock();
            let Some(last_segment) = state
                .tail
                .map(|tail| tail.segment)
                .or_else(|| state.segments.keys().next_back().copied())
            else {
                return Ok(());
            };
            let first_needed = state
                .entries
                .values()
                .next()
                .map_or(last_segment, |location| location.segment)
                .min(last_segment);
            let removable: Vec<u64> = state
                .segments
                .range(..first_needed)
                .map(|(n, _)| *n)
                .collect();
            for number in &removable {
                state.segments.remove(number);
            }
            removable
        };
        if removable.is_empty() {
            return Ok(());
        }
        for number in removable {
            std::fs::remove_file(segment_path(&self.dir, number))?;
        }
        sync_dir(&self.dir)?;
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update of the state is a few map operations done after the bytes were
        // written: a panic elsewhere cannot leave it half-done.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Fails for an encoded entry too large for one record (its length field is 32 bits).
pub(crate) fn check_entry_size(bytes: usize) -> StorageResult<()> {
    if bytes > MAX_RECORD_BYTES {
        return Err(StorageError::Contract(format!(
            "a log entry of {bytes} bytes is larger than a log record can hold"
        )));
    }
    Ok(())
}

fn round_up(bytes: u64) -> u64 {
    bytes.div_ceil(SEGMENT_GRANULE) * SEGMENT_GRANULE
}
