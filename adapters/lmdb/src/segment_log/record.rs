//! The records of a log segment and their framing: `len:u32 | crc:u32 | kind:u8 | payload`,
//! little-endian, where `len` counts the payload and `crc` is a CRC-32 of `len`, `kind` and
//! the payload *continued from the previous record's crc* (the first record of a segment
//! continues from a seed derived from the segment's number). The chain is what makes a
//! rewritten tail safe: after a crash the log resumes writing at the first record that does
//! not check, and bytes of older, unacknowledged records further on can never check again,
//! because they were chained from a record that is gone. Segments are zero-filled before use,
//! so an all-zero header marks the end of what was written.

use dbadger_core::codec::{decode_entry, decode_log_id, encode_entry, encode_log_id};
use dbadger_core::raft_types::{LogEntry, LogId};

/// The bytes of a record's header.
pub(crate) const HEADER_BYTES: usize = 9;

/// What a segment holds, in the order it was written.
#[derive(Debug, PartialEq)]
pub(crate) enum Record {
    /// The first record of every segment: what earlier segments established, so that they
    /// can be deleted once their entries are purged.
    Checkpoint {
        segment: u64,
        last_purged: Option<LogId>,
        committed: Option<LogId>,
    },
    /// One log entry, in the codec's encoding.
    Entry(LogEntry),
    /// Every entry after this one (all entries for `None`) is removed.
    TruncateAfter(Option<LogId>),
    /// Every entry up to this one is removed; it is the last purged.
    Purge(LogId),
    /// The latest committed id (a hint, see `LogStore::save_committed`).
    Committed(Option<LogId>),
    /// The records since the previous `Commit` (or the checkpoint) form one write: replay
    /// applies them only when it reaches this, so a write torn by a crash leaves no part.
    Commit,
    /// The segment is full; the log goes on in the next one.
    End,
}

const CHECKPOINT: u8 = 1;
const ENTRY: u8 = 2;
const TRUNCATE_AFTER: u8 = 3;
const PURGE: u8 = 4;
const COMMITTED: u8 = 5;
const END: u8 = 6;
const COMMIT: u8 = 7;

/// The crc a segment's first record continues from.
pub(crate) fn segment_seed(segment: u64) -> u32 {
    crc32fast::hash(&segment.to_le_bytes())
}

/// Appends `record`, framed, to `out`, chained from `previous_crc`; returns its crc.
pub(crate) fn encode_record(out: &mut Vec<u8>, previous_crc: u32, record: &Record) -> u32 {
    let (kind, parts) = match record {
        Record::Checkpoint {
            segment,
            last_purged,
            committed,
        } => (
            CHECKPOINT,
            vec![
                segment.to_le_bytes().to_vec(),
                length_prefixed(&encode_log_id(last_purged.as_ref())),
                encode_log_id(committed.as_ref()),
            ],
        ),
        Record::Entry(entry) => (ENTRY, vec![encode_entry(entry)]),
        Record::TruncateAfter(last_kept) => {
            (TRUNCATE_AFTER, vec![encode_log_id(last_kept.as_ref())])
        }
        Record::Purge(log_id) => (PURGE, vec![encode_log_id(Some(log_id))]),
        Record::Committed(committed) => (COMMITTED, vec![encode_log_id(committed.as_ref())]),
        Record::Commit => (COMMIT, Vec::new()),
        Record::End => (END, Vec::new()),
    };
    let parts: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    frame(out, previous_crc, kind, &parts)
}

/// Appends an entry record for an entry the caller has encoded already (the append path
/// encodes each entry once); returns its crc.
pub(crate) fn encode_entry_record(out: &mut Vec<u8>, previous_crc: u32, encoded: &[u8]) -> u32 {
    frame(out, previous_crc, ENTRY, &[encoded])
}

fn frame(out: &mut Vec<u8>, previous_crc: u32, kind: u8, parts: &[&[u8]]) -> u32 {
    let len: usize = parts.iter().map(|part| part.len()).sum();
    let len = u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes();
    let mut hasher = crc32fast::Hasher::new_with_initial(previous_crc);
    hasher.update(&len);
    hasher.update(&[kind]);
    for part in parts {
        hasher.update(part);
    }
    let crc = hasher.finalize();
    out.reserve(HEADER_BYTES + u32::from_le_bytes(len) as usize);
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc.to_le_bytes());
    out.push(kind);
    for part in parts {
        out.extend_from_slice(part);
    }
    crc
}

fn length_prefixed(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + bytes.len());
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
    out
}

/// One record read back: what it says, where its payload lies, and its crc.
#[derive(Debug)]
pub(crate) struct ReadRecord {
    pub(crate) record: Record,
    /// The offset of the payload in the segment and its length (for an entry, the codec bytes).
    pub(crate) payload_offset: usize,
    pub(crate) payload_len: usize,
    pub(crate) crc: u32,
    /// The offset just past the record.
    pub(crate) end: usize,
}

/// Why reading stopped where it did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// An all-zero header: nothing was ever written from here.
    Unwritten,
    /// A record that does not check (torn by a crash, or stale bytes of an older chain), or
    /// the end of the file.
    Invalid,
    /// A record that checks but does not decode: written by a build that disagrees with this
    /// one, or damaged in a way a crash does not produce. Never taken for the end of the log,
    /// which would drop acknowledged data.
    Undecodable,
}

/// Reads the record at `offset` of `segment`, chained from `previous_crc`.
pub(crate) fn read_record(
    segment: &[u8],
    offset: usize,
    previous_crc: u32,
) -> Result<ReadRecord, Stop> {
    let header = segment
        .get(offset..offset + HEADER_BYTES)
        .ok_or(Stop::Invalid)?;
    if header.iter().all(|&byte| byte == 0) {
        return Err(Stop::Unwritten);
    }
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let kind = header[8];
    let payload_offset = offset + HEADER_BYTES;
    let payload = segment
        .get(payload_offset..payload_offset.saturating_add(len))
        .ok_or(Stop::Invalid)?;
    let mut hasher = crc32fast::Hasher::new_with_initial(previous_crc);
    hasher.update(&header[0..4]);
    hasher.update(&[kind]);
    hasher.update(payload);
    if hasher.finalize() != crc {
        return Err(Stop::Invalid);
    }
    let record = decode_payload(kind, payload).ok_or(Stop::Undecodable)?;
    Ok(ReadRecord {
        record,
        payload_offset,
        payload_len: len,
        crc,
        end: payload_offset + len,
    })
}

fn decode_payload(kind: u8, payload: &[u8]) -> Option<Record> {
    let log_id = |bytes: &[u8]| decode_log_id(bytes).ok();
    match kind {
        CHECKPOINT => {
            let (segment, rest) = payload.split_first_chunk::<8>()?;
            let (purged_len, rest) = rest.split_first_chunk::<4>()?;
            let purged_len = u32::from_le_bytes(*purged_len) as usize;
            let (purged, committed) = (rest.get(..purged_len)?, rest.get(purged_len..)?);
            Some(Record::Checkpoint {
                segment: u64::from_le_bytes(*segment),
                last_purged: log_id(purged)?,
                committed: log_id(committed)?,
            })
        }
        ENTRY => decode_entry(payload).ok().map(Record::Entry),
        TRUNCATE_AFTER => Some(Record::TruncateAfter(log_id(payload)?)),
        PURGE => Some(Record::Purge(log_id(payload)??)),
        COMMITTED => Some(Record::Committed(log_id(payload)?)),
        COMMIT if payload.is_empty() => Some(Record::Commit),
        END if payload.is_empty() => Some(Record::End),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use dbadger_core::raft_types::{EntryPayload, LeaderId};
    use openraft::vote::RaftLeaderId;

    use super::*;

    fn log_id(term: u64, index: u64) -> LogId {
        LogId::new(LeaderId::new(term, 1), index)
    }

    fn entry(index: u64) -> LogEntry {
        LogEntry {
            log_id: log_id(2, index),
            payload: EntryPayload::Blank,
        }
    }

    fn write_all(seed: u32, records: &[Record]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut crc = seed;
        for record in records {
            crc = encode_record(&mut out, crc, record);
        }
        out
    }

    fn read_all(bytes: &[u8], seed: u32) -> (Vec<Record>, Stop) {
        let (mut offset, mut crc, mut records) = (0, seed, Vec::new());
        loop {
            match read_record(bytes, offset, crc) {
                Ok(read) => {
                    offset = read.end;
                    crc = read.crc;
                    records.push(read.record);
                }
                Err(stop) => return (records, stop),
            }
        }
    }

    fn sample() -> Vec<Record> {
        vec![
            Record::Checkpoint {
                segment: 7,
                last_purged: Some(log_id(1, 3)),
                committed: None,
            },
            Record::Entry(entry(4)),
            Record::Committed(Some(log_id(2, 4))),
            Record::TruncateAfter(None),
            Record::Purge(log_id(2, 9)),
            Record::Commit,
            Record::End,
        ]
    }

    #[test]
    fn records_read_back_as_written_up_to_the_zeroed_rest() {
        let mut bytes = write_all(segment_seed(7), &sample());
        bytes.resize(bytes.len() + 64, 0);
        assert_eq!(
            read_all(&bytes, segment_seed(7)),
            (sample(), Stop::Unwritten)
        );
    }

    #[test]
    fn a_torn_record_ends_the_segment_where_it_starts() {
        let whole = write_all(segment_seed(7), &sample());
        let first_two = write_all(segment_seed(7), &sample()[..2]).len();
        let mut torn = whole.clone();
        torn[first_two + HEADER_BYTES] ^= 0xff;
        let (records, stop) = read_all(&torn, segment_seed(7));
        assert_eq!((records.as_slice(), stop), (&sample()[..2], Stop::Invalid));
    }

    #[test]
    fn a_segment_read_with_another_seed_yields_nothing() {
        let bytes = write_all(segment_seed(7), &sample());
        assert_eq!(read_all(&bytes, segment_seed(8)).0, Vec::new());
    }

    /// After a crash the log writes over a torn record; a shorter new record must not make the
    /// old records behind it valid again.
    #[test]
    fn stale_records_behind_a_rewritten_tail_never_check() {
        let seed = segment_seed(1);
        let old = write_all(
            seed,
            &[
                Record::Entry(entry(1)),
                Record::Entry(entry(2)),
                Record::Entry(entry(3)),
            ],
        );
        let first = write_all(seed, &[Record::Entry(entry(1))]).len();
        // The crash tore entry 2; entry 3 survived on disk behind it.
        let mut disk = old.clone();
        disk[first + 3] ^= 0x55;
        let (records, _) = read_all(&disk, seed);
        assert_eq!(records.len(), 1);
        // The log resumes at entry 2's place with a shorter record: a truncation.
        let mut rewritten = Vec::new();
        let crc_after_first = read_record(&disk, 0, seed).expect("first").crc;
        encode_record(&mut rewritten, crc_after_first, &Record::End);
        disk[first..first + rewritten.len()].copy_from_slice(&rewritten);
        let (records, stop) = read_all(&disk, seed);
        assert_eq!(records, vec![Record::Entry(entry(1)), Record::End]);
        assert_eq!(stop, Stop::Invalid, "old entry 2 or 3 read as valid");
    }
}
