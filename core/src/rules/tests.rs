//! The rules, applied to the reference store, agree with a naive model on random operation
//! sequences: every response and the final key space.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::storage::memory::MemoryStateMachine;
use crate::storage::{StateMachineStore, StateWrite};
use crate::test_strategies;
use crate::testing::Model;

#[derive(Clone, Debug)]
enum Operation {
    Write(Command),
    Read(Query),
}

fn operation() -> impl Strategy<Value = Operation> {
    prop_oneof![
        3 => test_strategies::command().prop_map(Operation::Write),
        2 => test_strategies::query().prop_map(Operation::Read),
    ]
}

fn dump(store: &MemoryStateMachine) -> BTreeMap<Vec<u8>, (Vec<u8>, u64)> {
    store
        .dump()
        .into_iter()
        .map(|(key, found)| (key, (found.value, found.revision)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random writes and reads through the rules on the reference store give the model's
    /// responses, and the same final key space.
    #[test]
    fn rules_agree_with_the_model(
        operations in proptest::collection::vec(operation(), 1..60),
        max_response_bytes in prop_oneof![Just(usize::MAX), 1usize..120],
    ) {
        let limits = Limits { max_response_bytes, ..Limits::default() };
        let store = MemoryStateMachine::new();
        let mut model = Model::default();
        for (index, operation) in operations.iter().enumerate() {
            let revision = index as u64 + 1;
            match operation {
                Operation::Write(command) => {
                    let mut txn = store.write().expect("memory write");
                    let actual = apply(command, revision, &mut txn, &limits).expect("memory apply");
                    txn.commit().expect("memory commit");
                    prop_assert_eq!(actual, model.apply(command, revision, &limits), "{:?}", command);
                }
                Operation::Read(query) => {
                    let view = store.read().expect("memory read");
                    let actual = match read(query, &view, &limits) {
                        Ok(response) => Some(response),
                        Err(ReadError::ResponseTooLarge { .. }) => None,
                        Err(error) => panic!("memory read: {error}"),
                    };
                    prop_assert_eq!(actual, model.read(query, &limits), "{:?}", query);
                }
            }
        }
        prop_assert_eq!(dump(&store), model.pairs().clone());
    }
}

fn apply_all(store: &MemoryStateMachine, commands: &[Command]) -> Vec<Response> {
    commands
        .iter()
        .enumerate()
        .map(|(index, command)| {
            let mut txn = store.write().expect("memory write");
            let response =
                apply(command, index as u64 + 1, &mut txn, &Limits::default()).expect("apply");
            txn.commit().expect("commit");
            response
        })
        .collect()
}

fn set(key: &str, value: &str) -> Command {
    Command::Set {
        key: key.into(),
        value: value.into(),
    }
}

/// Both range bounds are inclusive, `count = 0` is unlimited, and `more` reports a cut.
#[test]
fn range_bounds_are_inclusive_and_count_zero_is_unlimited() {
    let store = MemoryStateMachine::new();
    apply_all(
        &store,
        &[set("a", "1"), set("b", "2"), set("c", "3"), set("d", "4")],
    );
    let view = store.read().expect("read");
    let limits = Limits::default();
    let range = |min: &str, max: &str, count| {
        let query = Query::GetRange {
            min: Some(min.into()),
            max: Some(max.into()),
            count,
        };
        match read(&query, &view, &limits).expect("read") {
            Response::Range { entries, more } => {
                (entries.into_iter().map(|e| e.key).collect::<Vec<_>>(), more)
            }
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(
        range("b", "c", 0),
        (vec![b"b".to_vec(), b"c".to_vec()], false)
    );
    assert_eq!(
        range("a", "d", 2),
        (vec![b"a".to_vec(), b"b".to_vec()], true)
    );
    assert_eq!(
        range("a", "b", 2),
        (vec![b"a".to_vec(), b"b".to_vec()], false)
    );
    assert_eq!(
        range("d", "a", 0),
        (vec![], false),
        "inverted bounds are empty, not a panic"
    );
}

/// Compare-and-set on value, revision and absence; failures report the current entry.
#[test]
fn compare_and_set_forms() {
    let store = MemoryStateMachine::new();
    let responses = apply_all(
        &store,
        &[
            Command::CompareAndSet {
                key: "k".into(),
                expected: Expected::Absent,
                new: NewValue::Value("v1".into()),
            },
            Command::CompareAndSet {
                key: "k".into(),
                expected: Expected::Absent,
                new: NewValue::Value("v2".into()),
            },
            Command::CompareAndSet {
                key: "k".into(),
                expected: Expected::Revision(1),
                new: NewValue::Value("v3".into()),
            },
            Command::CompareAndSet {
                key: "k".into(),
                expected: Expected::Value("v1".into()),
                new: NewValue::Delete,
            },
            Command::CompareAndSet {
                key: "k".into(),
                expected: Expected::Value("v3".into()),
                new: NewValue::Delete,
            },
        ],
    );
    let kv = |value: &str, revision| {
        Some(KeyValue {
            key: "k".into(),
            value: value.into(),
            revision,
        })
    };
    assert_eq!(
        responses[0],
        Response::CompareAndSet {
            revision: 1,
            succeeded: true,
            current: kv("v1", 1)
        }
    );
    assert_eq!(
        responses[1],
        Response::CompareAndSet {
            revision: 2,
            succeeded: false,
            current: kv("v1", 1)
        }
    );
    assert_eq!(
        responses[2],
        Response::CompareAndSet {
            revision: 3,
            succeeded: true,
            current: kv("v3", 3)
        }
    );
    assert_eq!(
        responses[3],
        Response::CompareAndSet {
            revision: 4,
            succeeded: false,
            current: kv("v3", 3)
        }
    );
    assert_eq!(
        responses[4],
        Response::CompareAndSet {
            revision: 5,
            succeeded: true,
            current: None
        }
    );
}

/// DeleteRange returns exactly the deleted keys, in order; a missing-key delete succeeds.
#[test]
fn delete_range_returns_deleted_keys() {
    let store = MemoryStateMachine::new();
    let responses = apply_all(
        &store,
        &[
            set("a", "1"),
            set("b", "2"),
            set("c", "3"),
            Command::DeleteRange {
                min: Some("b".into()),
                max: None,
            },
            Command::Delete { key: "zz".into() },
        ],
    );
    assert_eq!(
        responses[3],
        Response::DeletedKeys {
            revision: 4,
            keys: vec![b"b".to_vec(), b"c".to_vec()],
            deleted: 2,
            more: false,
        }
    );
    assert_eq!(
        responses[4],
        Response::Deleted {
            revision: 5,
            deleted: 0
        }
    );
    assert_eq!(store.dump().len(), 1);
}
