//! Snapshot files round-trip, and any damage is reported, never installed and never a panic.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::test_strategies;

fn write_snapshot(meta: &SnapshotMeta, records: &BTreeMap<Vec<u8>, (Vec<u8>, u64)>) -> Vec<u8> {
    let mut writer = SnapshotWriter::new(Vec::new(), meta).expect("header");
    for (key, (value, revision)) in records {
        writer.record(key, value, *revision).expect("record");
    }
    writer.finish().expect("trailer")
}

fn read_snapshot(bytes: &[u8]) -> Result<(SnapshotMeta, Vec<SnapshotRecord>), DecodeError> {
    let (mut reader, meta) = SnapshotReader::open(bytes)?;
    let mut records = Vec::new();
    while let Some(record) = reader.next_record()? {
        records.push(record);
    }
    Ok((meta, records))
}

fn records() -> impl Strategy<Value = BTreeMap<Vec<u8>, (Vec<u8>, u64)>> {
    proptest::collection::btree_map(
        proptest::collection::vec(any::<u8>(), 1..8),
        (test_strategies::bytes(), any::<u64>()),
        0..12,
    )
}

fn meta() -> impl Strategy<Value = SnapshotMeta> {
    (
        proptest::option::of(test_strategies::log_id()),
        test_strategies::stored_membership(),
    )
        .prop_map(|(last_log_id, last_membership)| SnapshotMeta {
            last_log_id,
            last_membership,
        })
}

proptest! {
    /// What is written is read back: metadata and every record, in order.
    #[test]
    fn snapshots_round_trip(meta in meta(), records in records()) {
        let bytes = write_snapshot(&meta, &records);
        let (read_meta, read_records) = read_snapshot(&bytes).expect("valid snapshot");
        prop_assert_eq!(read_meta, meta);
        let read_back: BTreeMap<_, _> = read_records
            .into_iter()
            .map(|r| (r.key, (r.value, r.revision)))
            .collect();
        prop_assert_eq!(read_back, records);
    }

    /// Flipping any bit of a snapshot file makes reading it fail.
    #[test]
    fn any_flipped_bit_is_detected(meta in meta(), records in records(), position in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut bytes = write_snapshot(&meta, &records);
        let at = position.index(bytes.len());
        bytes[at] ^= 1 << bit;
        prop_assert!(read_snapshot(&bytes).is_err(), "flip at {} undetected", at);
    }

    /// Every truncation of a snapshot file, and any extension, fails.
    #[test]
    fn truncated_or_extended_files_fail(meta in meta(), records in records()) {
        let bytes = write_snapshot(&meta, &records);
        for cut in 0..bytes.len() {
            prop_assert!(read_snapshot(&bytes[..cut]).is_err(), "cut at {}", cut);
        }
        let mut longer = bytes.clone();
        longer.push(0);
        prop_assert!(read_snapshot(&longer).is_err());
    }
}

/// A length field claiming gigabytes does not make the reader allocate them.
#[test]
fn corrupt_lengths_do_not_allocate() {
    let mut bytes = write_snapshot(&SnapshotMeta::default(), &BTreeMap::new());
    // Replace the trailer with a record whose key claims 511 bytes and value claims 4 GiB.
    bytes.truncate(bytes.len() - 13);
    bytes.push(RECORD);
    bytes.extend_from_slice(&1u32.to_be_bytes());
    bytes.push(b'k');
    bytes.extend_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        read_snapshot(&bytes),
        Err(DecodeError::UnexpectedEnd {
            what: "snapshot value",
            ..
        })
    ));
}

/// The writer refuses keys out of order rather than producing an unreadable file.
#[test]
fn writer_requires_ascending_keys() {
    let mut writer = SnapshotWriter::new(Vec::new(), &SnapshotMeta::default()).expect("header");
    writer.record(b"b", b"", 1).expect("first record");
    assert!(writer.record(b"a", b"", 1).is_err());
    assert!(writer.record(b"b", b"", 1).is_err());
}
