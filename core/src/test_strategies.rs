//! proptest strategies for the core's types, shared by the unit tests of several modules.

use std::collections::{BTreeMap, BTreeSet};

use openraft::vote::RaftLeaderId;
use proptest::collection::{btree_set, vec};
use proptest::prelude::*;

use crate::command::{Command, Expected, NewValue};
use crate::raft_types::{
    EntryPayload, LeaderId, LogEntry, LogId, Membership, Node, StoredMembership, Vote,
};
use crate::response::{KeyValue, Lookup, Response, Versioned};

/// Keys from a small alphabet so that generated operations collide on the same keys often.
pub(crate) fn small_key() -> impl Strategy<Value = Vec<u8>> {
    vec(prop_oneof![Just(b'a'), Just(b'b'), Just(b'c')], 1..4)
}

/// Any bytes, short.
pub(crate) fn bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..24)
}

pub(crate) fn optional_bound() -> impl Strategy<Value = Option<Vec<u8>>> {
    proptest::option::of(vec(prop_oneof![Just(b'a'), Just(b'b'), Just(b'c')], 0..4))
}

pub(crate) fn command() -> impl Strategy<Value = Command> {
    let expected = prop_oneof![
        bytes().prop_map(Expected::Value),
        (0u64..40).prop_map(Expected::Revision),
        Just(Expected::Absent),
    ];
    let new = prop_oneof![bytes().prop_map(NewValue::Value), Just(NewValue::Delete)];
    prop_oneof![
        4 => (small_key(), bytes()).prop_map(|(key, value)| Command::Set { key, value }),
        2 => vec((small_key(), bytes()), 0..5).prop_map(|pairs| Command::SetMany { pairs }),
        2 => small_key().prop_map(|key| Command::Delete { key }),
        1 => vec(small_key(), 0..5).prop_map(|keys| Command::DeleteMany { keys }),
        1 => vec(prop_oneof![Just(b'a'), Just(b'b')], 0..3)
            .prop_map(|prefix| Command::DeletePrefix { prefix }),
        1 => (optional_bound(), optional_bound())
            .prop_map(|(min, max)| Command::DeleteRange { min, max }),
        1 => Just(Command::DeleteAll),
        3 => (small_key(), expected, new)
            .prop_map(|(key, expected, new)| Command::CompareAndSet { key, expected, new }),
    ]
}

pub(crate) fn query() -> impl Strategy<Value = crate::query::Query> {
    use crate::query::Query;
    prop_oneof![
        small_key().prop_map(|key| Query::Get { key }),
        vec(small_key(), 0..5).prop_map(|keys| Query::GetMany { keys }),
        vec(prop_oneof![Just(b'a'), Just(b'b')], 0..3)
            .prop_map(|prefix| Query::GetPrefix { prefix }),
        (
            optional_bound(),
            optional_bound(),
            prop_oneof![Just(0u64), 1u64..4, any::<u64>()]
        )
            .prop_map(|(min, max, count)| Query::GetRange { min, max, count }),
    ]
}

pub(crate) fn key_value() -> impl Strategy<Value = KeyValue> {
    (bytes(), bytes(), any::<u64>()).prop_map(|(key, value, revision)| KeyValue {
        key,
        value,
        revision,
    })
}

pub(crate) fn response() -> impl Strategy<Value = Response> {
    let lookup =
        (bytes(), proptest::option::of((bytes(), any::<u64>()))).prop_map(|(key, found)| Lookup {
            key,
            found: found.map(|(value, revision)| Versioned { value, revision }),
        });
    prop_oneof![
        Just(Response::Empty),
        any::<u64>().prop_map(|revision| Response::Written { revision }),
        (any::<u64>(), any::<u64>())
            .prop_map(|(revision, deleted)| Response::Deleted { revision, deleted }),
        (
            any::<u64>(),
            vec(bytes(), 0..4),
            any::<u64>(),
            any::<bool>()
        )
            .prop_map(|(revision, keys, deleted, more)| Response::DeletedKeys {
                revision,
                keys,
                deleted,
                more
            }),
        (
            any::<u64>(),
            any::<bool>(),
            proptest::option::of(key_value())
        )
            .prop_map(|(revision, succeeded, current)| Response::CompareAndSet {
                revision,
                succeeded,
                current
            }),
        proptest::option::of(key_value()).prop_map(Response::Value),
        vec(lookup, 0..4).prop_map(Response::Values),
        (vec(key_value(), 0..4), any::<bool>())
            .prop_map(|(entries, more)| Response::Range { entries, more }),
    ]
}

pub(crate) fn log_id() -> impl Strategy<Value = LogId> {
    (any::<u64>(), any::<u64>(), any::<u64>())
        .prop_map(|(term, node, index)| LogId::new(LeaderId::new(term, node), index))
}

pub(crate) fn vote() -> impl Strategy<Value = Vote> {
    (any::<u64>(), any::<u64>(), any::<bool>()).prop_map(|(term, node, committed)| {
        if committed {
            Vote::new_committed(term, node)
        } else {
            Vote::new(term, node)
        }
    })
}

/// Valid memberships: one or two non-empty voter sets, every voter with a node, some learners.
pub(crate) fn membership() -> impl Strategy<Value = Membership> {
    (
        vec(btree_set(0u64..8, 1..4), 1..3),
        btree_set(8u64..12, 0..3),
        "[a-z0-9.:]{0,12}",
    )
        .prop_map(|(configs, learners, addr)| {
            let ids: BTreeSet<u64> = configs.iter().flatten().copied().chain(learners).collect();
            let nodes: BTreeMap<u64, Node> = ids
                .into_iter()
                .map(|id| {
                    (
                        id,
                        Node {
                            addr: format!("{addr}{id}"),
                        },
                    )
                })
                .collect();
            Membership::new(configs, nodes).expect("every voter has a node")
        })
}

pub(crate) fn stored_membership() -> impl Strategy<Value = StoredMembership> {
    (proptest::option::of(log_id()), membership())
        .prop_map(|(log_id, membership)| StoredMembership::new(log_id, membership))
}

pub(crate) fn entry() -> impl Strategy<Value = LogEntry> {
    let payload = prop_oneof![
        Just(EntryPayload::Blank),
        command().prop_map(EntryPayload::Normal),
        membership().prop_map(EntryPayload::Membership),
    ];
    (log_id(), payload).prop_map(|(log_id, payload)| LogEntry { log_id, payload })
}
