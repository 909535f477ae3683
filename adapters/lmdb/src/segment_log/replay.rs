//! Opening a log: replaying its segments into the in-memory state, removing what a crash
//! left behind and reporting damage (the rules are in `docs/on-disk-layout.md`).

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::Arc;

use dbadger_core::storage::StorageResult;

use super::record::{Record, Stop, read_record, segment_seed};
use super::segment::{list_segments, segment_path, sync_dir};
use super::{Change, Location, Segment, State, Tail};
use crate::damaged;

/// Rebuilds the log's state from its segments, in number order. Reading stops at the first
/// record that does not check in a segment that was not sealed: that is where the last write
/// stopped. What a crash can leave besides is removed: one segment after an unsealed one (a
/// roll-over whose `End` record did not reach the disk), a last segment whose checkpoint did
/// not, and segments before a gap in the numbers (deletions after a purge that only partly
/// reached the disk). Anything else out of place is damage, and opening reports it.
pub(super) fn replay(dir: &Path) -> StorageResult<State> {
    let mut numbers = list_segments(dir)?;
    let mut removed = Vec::new();
    let gap = numbers
        .windows(2)
        .rposition(|pair| pair[0].checked_add(1) != Some(pair[1]));
    if let Some(gap) = gap {
        removed.extend(numbers.drain(..=gap));
    }
    let mut state = State::default();
    let mut unsealed: Option<u64> = None;
    let last_position = numbers.len().saturating_sub(1);
    for (position, &number) in numbers.iter().enumerate() {
        let is_last = position == last_position;
        if let Some(open) = unsealed {
            if !is_last {
                return Err(damaged(
                    "log",
                    format!("segments follow segment {open}, which was never sealed"),
                ));
            }
            removed.push(number);
            continue;
        }
        let path = segment_path(dir, number);
        let bytes = std::fs::read(&path)?;
        let Some(replayed) = replay_segment(&bytes, number, &mut state)? else {
            // A fresh log's first segment, or a roll-over's, whose checkpoint was not flushed.
            let never_flushed = is_last && (position > 0 || number == 1);
            if !never_flushed {
                return Err(damaged(
                    "log",
                    format!("segment {number} does not start with a valid checkpoint"),
                ));
            }
            removed.push(number);
            continue;
        };
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        state.segments.insert(
            number,
            Segment {
                file: Arc::new(file),
                size: bytes.len() as u64,
            },
        );
        state.tail = match replayed {
            Replayed::Sealed => None,
            Replayed::Open { offset, crc } => {
                unsealed = Some(number);
                Some(Tail {
                    segment: number,
                    offset: offset as u64,
                    crc,
                    size: bytes.len() as u64,
                })
            }
        };
    }
    if gap.is_some() && state.last_purged.is_none() {
        // Deletions follow a purge, whose id the next segment's checkpoint carries.
        return Err(damaged(
            "log",
            "a segment is missing, and no purge explains the gap",
        ));
    }
    check_continuity(&state)?;
    // Numbers of removed segments are used again: their files are gone before any new one.
    state.next_segment = state
        .segments
        .keys()
        .next_back()
        .map_or(1, |last| last.saturating_add(1));
    for number in &removed {
        std::fs::remove_file(segment_path(dir, *number))?;
    }
    if !removed.is_empty() {
        sync_dir(dir)?;
    }
    Ok(state)
}

enum Replayed {
    /// The segment ends with an `End` record.
    Sealed,
    /// The next record goes at `offset`, chained from `crc`.
    Open { offset: usize, crc: u32 },
}

/// Applies one segment's records to `state`; `None` if its checkpoint does not check (it
/// never reached the disk). Records that check but are out of place are damage.
fn replay_segment(bytes: &[u8], number: u64, state: &mut State) -> StorageResult<Option<Replayed>> {
    let out_of_place = |what: &str, offset: usize| {
        damaged(
            "log",
            format!("segment {number} holds {what} at offset {offset}"),
        )
    };
    let first = match read_record(bytes, 0, segment_seed(number)) {
        Ok(first) => first,
        Err(Stop::Undecodable) => return Err(out_of_place("a record that does not decode", 0)),
        Err(Stop::Unwritten | Stop::Invalid) => return Ok(None),
    };
    let Record::Checkpoint {
        segment,
        last_purged,
        committed,
    } = first.record
    else {
        return Err(out_of_place("a first record other than its checkpoint", 0));
    };
    if segment != number {
        return Err(out_of_place("the checkpoint of another segment", 0));
    }
    state.apply(Change::Checkpoint {
        last_purged,
        committed,
    });
    // The end of the last whole group: where writing goes on if the segment is not sealed.
    let (mut committed_offset, mut committed_crc) = (first.end, first.crc);
    let (mut offset, mut crc) = (committed_offset, committed_crc);
    let mut group = Vec::new();
    loop {
        let read = match read_record(bytes, offset, crc) {
            Ok(read) => read,
            Err(Stop::Undecodable) => {
                return Err(out_of_place("a record that does not decode", offset));
            }
            Err(Stop::Unwritten | Stop::Invalid) => break,
        };
        let at = offset;
        offset = read.end;
        crc = read.crc;
        let change = match read.record {
            Record::Checkpoint { .. } => return Err(out_of_place("a second checkpoint", at)),
            Record::Entry(entry) => Change::Entry(Location {
                log_id: entry.log_id,
                segment: number,
                offset: read.payload_offset as u64,
                len: read.payload_len,
            }),
            Record::TruncateAfter(last_kept) => Change::TruncateAfter(last_kept),
            Record::Purge(log_id) => Change::Purge(log_id),
            Record::Committed(committed) => Change::Committed(committed),
            Record::Commit => {
                for change in group.drain(..) {
                    state.apply(change);
                }
                (committed_offset, committed_crc) = (offset, crc);
                continue;
            }
            Record::End if group.is_empty() => return Ok(Some(Replayed::Sealed)),
            Record::End => return Err(out_of_place("an end record inside a group", at)),
        };
        group.push(change);
    }
    Ok(Some(Replayed::Open {
        offset: committed_offset,
        crc: committed_crc,
    }))
}

/// The entries replay found must run without a hole from the last purged one: anything else
/// means a segment is missing or damaged, and is reported before any file is removed.
fn check_continuity(state: &State) -> StorageResult<()> {
    let mut expected = state.last_purged.and_then(|id| id.index.checked_add(1));
    for &index in state.entries.keys() {
        if expected.is_some_and(|expected| expected != index) {
            return Err(damaged(
                "log",
                format!("the segments hold no entry before {index}"),
            ));
        }
        expected = index.checked_add(1);
    }
    Ok(())
}
