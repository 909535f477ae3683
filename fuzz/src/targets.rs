//! The fuzz target bodies.

use std::collections::BTreeMap;

use arbitrary::{Arbitrary, Unstructured};
use dbadger_core::codec::{decode_entry, encode_entry};
use dbadger_core::snapshot_format::{SnapshotReader, SnapshotWriter};
use dbadger_core::storage::memory::MemoryStateMachine;
use dbadger_core::storage::{StateMachineStore, StateWrite};
use dbadger_core::testing::{Model, dump};
use dbadger_core::{Command, Expected, Limits, NewValue, Query, rules};

use crate::allocation::{allocated_during, counting_is_active};

/// The codec's documented allocation bound: 16 bytes per input byte plus 4 KiB (B-tree nodes of
/// small memberships are the largest fixed cost).
fn allocation_bound(input_len: usize) -> usize {
    16 * input_len + 4096
}

/// Decoding never panics or over-allocates, and what decodes re-encodes identically.
pub fn decode_log_entry(data: &[u8]) {
    let (decoded, allocated) = allocated_during(|| decode_entry(data));
    if counting_is_active() {
        assert!(
            allocated <= allocation_bound(data.len()),
            "decoding {} bytes allocated {allocated} bytes",
            data.len()
        );
    }
    if let Ok(entry) = decoded {
        assert_eq!(
            encode_entry(&entry),
            data,
            "decode/encode is not the identity"
        );
    }
}

/// Reading a snapshot never panics; a snapshot that reads back completely is rewritten to the
/// same bytes.
pub fn decode_snapshot(data: &[u8]) {
    let Ok((mut reader, meta)) = SnapshotReader::open(data) else {
        return;
    };
    let mut records = Vec::new();
    loop {
        match reader.next_record() {
            Ok(Some(record)) => records.push(record),
            Ok(None) => break,
            Err(_) => return,
        }
    }
    let mut writer = SnapshotWriter::new(Vec::new(), &meta).expect("writing to memory succeeds");
    for record in &records {
        writer
            .record(&record.key, &record.value, record.revision)
            .expect("records that read back are in order");
    }
    let rewritten = writer.finish().expect("writing to memory succeeds");
    assert_eq!(rewritten, data, "snapshot did not round-trip");
}

/// A key from a four-letter alphabet, one to three letters long: collisions are the point.
#[derive(Debug)]
struct Key(Vec<u8>);

impl<'a> Arbitrary<'a> for Key {
    fn arbitrary(input: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let len = input.int_in_range(1..=3)?;
        let mut key = Vec::with_capacity(len);
        for _ in 0..len {
            key.push(b'a' + input.int_in_range(0..=3)?);
        }
        Ok(Key(key))
    }
}

#[derive(Debug, Arbitrary)]
enum FuzzExpected {
    Value(Vec<u8>),
    Revision(u8),
    Absent,
}

#[derive(Debug, Arbitrary)]
enum FuzzCommand {
    Set(Key, Vec<u8>),
    SetMany(Vec<(Key, Vec<u8>)>),
    Delete(Key),
    DeleteMany(Vec<Key>),
    DeletePrefix(Option<Key>),
    DeleteRange(Option<Key>, Option<Key>),
    DeleteAll,
    CompareAndSet(Key, FuzzExpected, Option<Vec<u8>>),
}

#[derive(Debug, Arbitrary)]
enum FuzzQuery {
    Get(Key),
    GetMany(Vec<Key>),
    GetPrefix(Option<Key>),
    GetRange(Option<Key>, Option<Key>, u8),
}

#[derive(Debug, Arbitrary)]
enum Operation {
    /// A write; `abort` drops its transaction instead of committing it.
    Write {
        command: FuzzCommand,
        abort: bool,
    },
    Read(FuzzQuery),
}

fn bytes(key: Option<Key>) -> Vec<u8> {
    key.map(|k| k.0).unwrap_or_default()
}

impl From<FuzzCommand> for Command {
    fn from(command: FuzzCommand) -> Command {
        match command {
            FuzzCommand::Set(key, value) => Command::Set { key: key.0, value },
            FuzzCommand::SetMany(pairs) => Command::SetMany {
                pairs: pairs.into_iter().map(|(k, v)| (k.0, v)).collect(),
            },
            FuzzCommand::Delete(key) => Command::Delete { key: key.0 },
            FuzzCommand::DeleteMany(keys) => Command::DeleteMany {
                keys: keys.into_iter().map(|k| k.0).collect(),
            },
            FuzzCommand::DeletePrefix(prefix) => Command::DeletePrefix {
                prefix: bytes(prefix),
            },
            FuzzCommand::DeleteRange(min, max) => Command::DeleteRange {
                min: min.map(|k| k.0),
                max: max.map(|k| k.0),
            },
            FuzzCommand::DeleteAll => Command::DeleteAll,
            FuzzCommand::CompareAndSet(key, expected, new) => Command::CompareAndSet {
                key: key.0,
                expected: match expected {
                    FuzzExpected::Value(value) => Expected::Value(value),
                    FuzzExpected::Revision(revision) => Expected::Revision(u64::from(revision)),
                    FuzzExpected::Absent => Expected::Absent,
                },
                new: new.map_or(NewValue::Delete, NewValue::Value),
            },
        }
    }
}

impl From<FuzzQuery> for Query {
    fn from(query: FuzzQuery) -> Query {
        match query {
            FuzzQuery::Get(key) => Query::Get { key: key.0 },
            FuzzQuery::GetMany(keys) => Query::GetMany {
                keys: keys.into_iter().map(|k| k.0).collect(),
            },
            FuzzQuery::GetPrefix(prefix) => Query::GetPrefix {
                prefix: bytes(prefix),
            },
            FuzzQuery::GetRange(min, max, count) => Query::GetRange {
                min: min.map(|k| k.0),
                max: max.map(|k| k.0),
                count: u64::from(count % 5),
            },
        }
    }
}

/// The most operations one input drives, to keep each run short.
const MAX_OPERATIONS: usize = 256;

/// Operation sequences through the rules on the reference store agree with the naive model:
/// every committed write's response, every read, the final key space; an aborted write
/// changes nothing.
pub fn state_machine_ops(data: &[u8]) {
    let mut input = Unstructured::new(data);
    let max_response_bytes = input.int_in_range(1..=64).unwrap_or(64);
    let limits = Limits {
        max_response_bytes,
        ..Limits::default()
    };
    let store = MemoryStateMachine::new();
    let mut model = Model::default();
    let mut revision = 0u64;
    for _ in 0..MAX_OPERATIONS {
        let Ok(operation) = Operation::arbitrary(&mut input) else {
            break;
        };
        match operation {
            Operation::Write { command, abort } => {
                revision += 1;
                let command = Command::from(command);
                let mut txn = store.write().expect("memory store writes");
                let response =
                    rules::apply(&command, revision, &mut txn, &limits).expect("memory apply");
                if abort {
                    drop(txn);
                } else {
                    txn.commit().expect("memory commit");
                    assert_eq!(
                        response,
                        model.apply(&command, revision, &limits),
                        "{command:?}"
                    );
                }
            }
            Operation::Read(query) => {
                let query = Query::from(query);
                let view = store.read().expect("memory store reads");
                let response = match rules::read(&query, &view, &limits) {
                    Ok(response) => Some(response),
                    Err(rules::ReadError::ResponseTooLarge { .. }) => None,
                    Err(error) => panic!("memory read: {error}"),
                };
                assert_eq!(response, model.read(&query, &limits), "{query:?}");
            }
        }
        if input.is_empty() {
            break;
        }
    }
    let actual: BTreeMap<Vec<u8>, (Vec<u8>, u64)> = dump(&store)
        .into_iter()
        .map(|(key, found)| (key, (found.value, found.revision)))
        .collect();
    assert_eq!(
        &actual,
        model.pairs(),
        "final key space differs from the model"
    );
}
