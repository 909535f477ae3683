//! The log's segment files on a real disk: what a reopen makes of a torn tail, of an
//! interrupted roll-over and of stale bytes behind a rewritten tail; roll-over into new
//! segments and removal of purged ones; truncation across a reopen. (Kill -9 while writing is
//! `crash.rs`; the storage contract is `conformance.rs`.)

use std::fs;
use std::path::{Path, PathBuf};

use dbadger_core::raft_types::{EntryPayload, LeaderId, LogEntry, LogId};
use dbadger_core::storage::LogStore;
use dbadger_core::testing::append_durably;
use dbadger_core::{Command, StorageError};
use dbadger_lmdb::{LmdbLogStore, LmdbOptions, LmdbStore};
use openraft::vote::RaftLeaderId;

fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(LeaderId::new(term, 1), index)
}

/// An entry of about 1 KiB, so that a few dozen fill a small segment.
fn entry(term: u64, index: u64) -> LogEntry {
    LogEntry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(Command::Set {
            key: format!("key-{index}").into_bytes(),
            value: vec![(index % 251) as u8; 1000],
        }),
    }
}

fn entries(term: u64, indices: std::ops::RangeInclusive<u64>) -> Vec<LogEntry> {
    indices.map(|index| entry(term, index)).collect()
}

/// Segments of 16 KiB (the smallest): a store of 256 KiB gets them.
fn small_options() -> LmdbOptions {
    LmdbOptions {
        max_size_bytes: 256 << 10,
        log_segment_bytes: 16 << 10,
        ..LmdbOptions::default()
    }
}

fn open(dir: &Path) -> LmdbLogStore {
    LmdbStore::open(dir, small_options())
        .expect("open")
        .into_parts()
        .0
}

/// The error of opening the store in `dir`, which must fail.
fn open_error(dir: &Path) -> StorageError {
    LmdbStore::open(dir, small_options()).expect_err("the store opened")
}

/// Entries 1..=`last` of term 1, one append (one record group) each.
fn append_one_by_one(log: &LmdbLogStore, last: u64) {
    for index in 1..=last {
        append_durably(log, vec![entry(1, index)]);
    }
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir.join("lmdb/log"))
        .expect("segment directory")
        .map(|item| item.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "seg"))
        .collect();
    files.sort();
    files
}

fn indices(log: &LmdbLogStore) -> Vec<u64> {
    log.entries(0, u64::MAX)
        .expect("entries")
        .iter()
        .map(|entry| entry.log_id.index)
        .collect()
}

/// Where `needle` (the value bytes of entry `index`) starts in the last segment.
fn find_entry(segment: &[u8], index: u64) -> usize {
    let value = vec![(index % 251) as u8; 1000];
    let key = format!("key-{index}").into_bytes();
    let key_at = segment
        .windows(key.len())
        .position(|window| window == key.as_slice())
        .expect("entry in the segment");
    key_at
        + segment[key_at..]
            .windows(64)
            .position(|window| window == &value[..64])
            .expect("value after the key")
}

#[test]
fn entries_roll_over_into_new_segments_and_read_back_after_reopen() {
    let dir = tempfile::tempdir().expect("temporary directory");
    {
        let log = open(dir.path());
        append_one_by_one(&log, 60);
        assert_eq!(indices(&log), (1..=60).collect::<Vec<_>>());
    }
    assert!(
        segment_files(dir.path()).len() >= 4,
        "60 KiB of entries in 16 KiB segments took {} segments",
        segment_files(dir.path()).len()
    );
    let log = open(dir.path());
    assert_eq!(indices(&log), (1..=60).collect::<Vec<_>>());
    assert_eq!(log.log_bounds().expect("bounds").last, Some(log_id(1, 60)));
    let read = log.entries(30, 31).expect("entry 30");
    assert_eq!(read, vec![entry(1, 30)]);
}

#[test]
fn a_purge_removes_the_segments_it_emptied_and_survives_reopen() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let before;
    {
        let log = open(dir.path());
        append_one_by_one(&log, 60);
        before = segment_files(dir.path());
        log.purge_through(&log_id(1, 50)).expect("purge");
        let after = segment_files(dir.path());
        assert!(
            after.len() < before.len() && after.last() == before.last(),
            "the purge kept segments {after:?} of {before:?}"
        );
        assert_eq!(indices(&log), (51..=60).collect::<Vec<_>>());
    }
    let log = open(dir.path());
    let bounds = log.log_bounds().expect("bounds");
    assert_eq!(
        (bounds.last_purged, bounds.last),
        (Some(log_id(1, 50)), Some(log_id(1, 60)))
    );
    assert_eq!(indices(&log), (51..=60).collect::<Vec<_>>());
    append_durably(&log, vec![entry(1, 61)]);
    assert_eq!(indices(&log), (51..=61).collect::<Vec<_>>());
}

#[test]
fn a_purge_past_the_last_entry_leaves_an_empty_log_that_goes_on() {
    let dir = tempfile::tempdir().expect("temporary directory");
    {
        let log = open(dir.path());
        append_durably(&log, entries(1, 1..=40));
        log.purge_through(&log_id(3, 100)).expect("purge");
    }
    let log = open(dir.path());
    let bounds = log.log_bounds().expect("bounds");
    assert_eq!(
        (bounds.last_purged, bounds.last),
        (Some(log_id(3, 100)), Some(log_id(3, 100)))
    );
    append_durably(&log, vec![entry(3, 101)]);
    drop(log);
    assert_eq!(indices(&open(dir.path())), vec![101]);
}

/// A write torn by a crash leaves no part of itself: a group of five entries with its last one
/// torn is dropped whole.
#[test]
fn a_torn_group_is_dropped_whole() {
    let dir = tempfile::tempdir().expect("temporary directory");
    drop({
        let log = open(dir.path());
        append_durably(&log, entries(1, 1..=2));
        append_durably(&log, entries(1, 3..=7));
        log
    });
    let last = segment_files(dir.path()).pop().expect("a segment");
    let mut bytes = fs::read(&last).expect("read segment");
    let at = find_entry(&bytes, 7);
    bytes[at] ^= 0xff;
    fs::write(&last, &bytes).expect("tear entry 7");
    assert_eq!(indices(&open(dir.path())), vec![1, 2]);
}

#[test]
fn a_truncation_and_the_entries_that_replace_the_removed_ones_survive_reopen() {
    let dir = tempfile::tempdir().expect("temporary directory");
    {
        let log = open(dir.path());
        append_durably(&log, entries(1, 1..=10));
        log.truncate_after(Some(&log_id(1, 4))).expect("truncate");
        append_durably(&log, entries(2, 5..=7));
    }
    let log = open(dir.path());
    let read = log.entries(0, u64::MAX).expect("entries");
    let expected: Vec<LogEntry> = entries(1, 1..=4)
        .into_iter()
        .chain(entries(2, 5..=7))
        .collect();
    assert_eq!(read, expected);
}

/// A crash that tore the last write: the log ends before the torn entry, and goes on there.
/// (Each append is one record group, applied whole or not at all.)
#[test]
fn a_torn_last_entry_is_dropped_and_the_log_goes_on_in_its_place() {
    let dir = tempfile::tempdir().expect("temporary directory");
    drop({
        let log = open(dir.path());
        append_durably(&log, entries(1, 1..=4));
        append_durably(&log, vec![entry(1, 5)]);
        log
    });
    let last = segment_files(dir.path()).pop().expect("a segment");
    let mut bytes = fs::read(&last).expect("read segment");
    let at = find_entry(&bytes, 5);
    bytes[at + 10] ^= 0xff;
    fs::write(&last, &bytes).expect("tear entry 5");
    {
        let log = open(dir.path());
        assert_eq!(indices(&log), vec![1, 2, 3, 4]);
        append_durably(&log, vec![entry(2, 5)]);
    }
    let log = open(dir.path());
    assert_eq!(log.entries(5, 6).expect("entry 5"), vec![entry(2, 5)]);
    assert_eq!(indices(&log), vec![1, 2, 3, 4, 5]);
}

/// Entries written after a torn one stay out of the log when the log writes a record of the
/// same size over the torn one, so that the old records behind it start exactly where the new
/// one ends: their checksums chain from the torn record, not from the new one.
#[test]
fn stale_entries_behind_a_rewritten_tail_stay_out() {
    let dir = tempfile::tempdir().expect("temporary directory");
    drop({
        let log = open(dir.path());
        append_durably(&log, entries(1, 1..=5));
        for index in 6..=8 {
            append_durably(&log, vec![entry(1, index)]);
        }
        log
    });
    let last = segment_files(dir.path()).pop().expect("a segment");
    let mut bytes = fs::read(&last).expect("read segment");
    let at = find_entry(&bytes, 6);
    bytes[at] ^= 0xff;
    fs::write(&last, &bytes).expect("tear entry 6");
    {
        let log = open(dir.path());
        assert_eq!(indices(&log), (1..=5).collect::<Vec<_>>());
        // Entry 6 of a new term: the same encoded size as the torn one.
        append_durably(&log, vec![entry(2, 6)]);
    }
    let log = open(dir.path());
    assert_eq!(
        indices(&log),
        (1..=6).collect::<Vec<_>>(),
        "entries 7 and 8 of the old term came back"
    );
    assert_eq!(log.log_bounds().expect("bounds").last, Some(log_id(2, 6)));
}

/// A roll-over interrupted by a crash leaves a next segment whose checkpoint never reached the
/// disk: it is removed, and the log goes on from the last segment.
#[test]
fn a_segment_left_by_an_interrupted_roll_over_is_removed() {
    let dir = tempfile::tempdir().expect("temporary directory");
    drop({
        let log = open(dir.path());
        append_durably(&log, entries(1, 1..=5));
        log
    });
    let last = segment_files(dir.path()).pop().expect("a segment");
    let name = last
        .file_stem()
        .expect("stem")
        .to_string_lossy()
        .to_string();
    let next: u64 = name.parse::<u64>().expect("segment number") + 1;
    let stray = last.with_file_name(format!("{next:020}.seg"));
    fs::write(&stray, vec![0u8; 16 << 10]).expect("stray segment");
    {
        let log = open(dir.path());
        assert!(!stray.exists(), "the stray segment was kept");
        assert_eq!(indices(&log), (1..=5).collect::<Vec<_>>());
        append_durably(&log, vec![entry(1, 6)]);
    }
    assert_eq!(indices(&open(dir.path())), (1..=6).collect::<Vec<_>>());
}

/// A first segment without a valid checkpoint, once earlier ones were removed, is damage
/// (its checkpoint was durable before they were): opening says so instead of starting empty.
#[test]
fn a_damaged_first_segment_is_reported() {
    let dir = tempfile::tempdir().expect("temporary directory");
    drop({
        let log = open(dir.path());
        append_one_by_one(&log, 60);
        log.purge_through(&log_id(1, 50)).expect("purge");
        log
    });
    let first = segment_files(dir.path()).remove(0);
    let mut bytes = fs::read(&first).expect("read segment");
    bytes[4] ^= 0xff;
    fs::write(&first, &bytes).expect("damage the checkpoint");
    let error = open_error(dir.path());
    assert!(
        matches!(&error, StorageError::Io(_)) && error.to_string().contains("checkpoint"),
        "unexpected error: {error}"
    );
}

/// Zeroes a segment file's contents, as if none of its writes had reached the disk.
fn zero(path: &Path) {
    let len = fs::metadata(path).expect("segment").len() as usize;
    fs::write(path, vec![0u8; len]).expect("zero the segment");
}

/// A fresh log's first segment whose writes never reached the disk, twice in a row: each
/// reopen finds an empty log (the second crash leaves the segment the first one's number got
/// again, not a later number that would read as a first segment of a purged log).
#[test]
fn a_fresh_log_that_never_reached_the_disk_opens_empty_after_each_crash() {
    let dir = tempfile::tempdir().expect("temporary directory");
    for round in 0..2 {
        drop({
            let log = open(dir.path());
            assert_eq!(indices(&log), Vec::<u64>::new(), "round {round}");
            append_durably(&log, entries(1, 1..=3));
            log
        });
        let segments = segment_files(dir.path());
        assert_eq!(segments.len(), 1, "round {round}: {segments:?}");
        zero(&segments[0]);
    }
    let log = open(dir.path());
    assert_eq!(indices(&log), Vec::<u64>::new());
}

/// Deletions after a purge that only partly reached the disk leave an old segment before a
/// gap: it is ignored and removed, and the log reads as it was.
#[test]
fn a_segment_before_a_gap_is_ignored() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let saved;
    {
        let log = open(dir.path());
        append_one_by_one(&log, 60);
        let first = segment_files(dir.path()).remove(0);
        saved = (first.clone(), fs::read(&first).expect("first segment"));
        log.truncate_after(Some(&log_id(1, 55))).expect("truncate");
        log.purge_through(&log_id(1, 50)).expect("purge");
    }
    let (first, bytes) = saved;
    assert!(!first.exists(), "the purge kept the first segment");
    fs::write(&first, bytes).expect("the first segment's deletion was lost");
    let log = open(dir.path());
    assert!(!first.exists(), "the segment before the gap was kept");
    assert_eq!(indices(&log), (51..=55).collect::<Vec<_>>());
}

/// Two segments after one that was never sealed cannot come from a crash (a roll-over flushes
/// the `End` record before the next roll-over can happen): opening reports damage instead of
/// removing them.
#[test]
fn segments_after_an_unsealed_one_are_reported() {
    let dir = tempfile::tempdir().expect("temporary directory");
    append_one_by_one(&open(dir.path()), 60);
    let segments = segment_files(dir.path());
    assert!(segments.len() >= 4, "{segments:?}");
    let mut bytes = fs::read(&segments[1]).expect("second segment");
    let end_record = bytes
        .iter()
        .rposition(|&byte| byte != 0)
        .expect("records in the segment");
    bytes[end_record] ^= 0xff;
    fs::write(&segments[1], bytes).expect("tear the end record");
    let error = open_error(dir.path());
    assert!(
        error.to_string().contains("never sealed"),
        "unexpected error: {error}"
    );
    assert_eq!(segment_files(dir.path()), segments, "segments were removed");
}

/// Hundreds of roll-overs in a row, each taking the segment prepared ahead while the next one
/// is being prepared: every acknowledged entry reads back after a reopen.
#[test]
fn many_roll_overs_keep_every_entry() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let options = LmdbOptions {
        max_size_bytes: 64 << 20,
        log_segment_bytes: 16 << 10,
        ..LmdbOptions::default()
    };
    let last = 3000;
    {
        let (log, _) = LmdbStore::open(dir.path(), options.clone())
            .expect("open")
            .into_parts();
        append_one_by_one(&log, last);
    }
    assert!(segment_files(dir.path()).len() > 150);
    let (log, _) = LmdbStore::open(dir.path(), options)
        .expect("reopen")
        .into_parts();
    assert_eq!(indices(&log), (1..=last).collect::<Vec<_>>());
    assert_eq!(
        log.entries(last, last + 1).expect("last"),
        vec![entry(1, last)]
    );
}

/// A segment missing from the middle of the log (no purge removed it) is damage: the log
/// would have a hole. Opening reports it and removes nothing.
#[test]
fn a_missing_middle_segment_is_reported() {
    let dir = tempfile::tempdir().expect("temporary directory");
    append_one_by_one(&open(dir.path()), 60);
    let mut segments = segment_files(dir.path());
    assert!(segments.len() >= 4, "{segments:?}");
    fs::remove_file(segments.remove(1)).expect("remove a middle segment");
    let error = open_error(dir.path());
    assert!(
        error.to_string().contains("missing"),
        "unexpected error: {error}"
    );
    assert_eq!(segment_files(dir.path()), segments, "segments were removed");
}

/// A record whose checksum holds but whose payload does not decode is not a torn write:
/// taking it for the end of the log would drop acknowledged entries after it.
#[test]
fn a_record_that_checks_but_does_not_decode_is_reported() {
    let dir = tempfile::tempdir().expect("temporary directory");
    drop({
        let log = open(dir.path());
        append_durably(&log, entries(1, 1..=3));
        log
    });
    let last = segment_files(dir.path()).pop().expect("a segment");
    let mut bytes = fs::read(&last).expect("read segment");
    // The checkpoint is the first record; the first entry's header follows it.
    let checkpoint_len = 9 + u32::from_le_bytes(bytes[0..4].try_into().expect("len")) as usize;
    let header = checkpoint_len;
    let len = u32::from_le_bytes(bytes[header..header + 4].try_into().expect("len")) as usize;
    let payload = header + 9;
    // A version byte no build writes, then the checksum recomputed as the writer would.
    bytes[payload] = 0xee;
    let previous = u32::from_le_bytes(bytes[4..8].try_into().expect("crc"));
    let mut hasher = crc32fast::Hasher::new_with_initial(previous);
    hasher.update(&bytes[header..header + 4]);
    hasher.update(&bytes[header + 8..payload + len]);
    let crc = hasher.finalize();
    bytes[header + 4..header + 8].copy_from_slice(&crc.to_le_bytes());
    fs::write(&last, &bytes).expect("rewrite the segment");
    let error = open_error(dir.path());
    assert!(
        error.to_string().contains("does not decode"),
        "unexpected error: {error}"
    );
}
