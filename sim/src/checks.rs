//! The checks on a finished run's history: linearizability of writes and Leader reads, per key;
//! Local reads never invent a value and never go backwards within one boot of a node.
//!
//! Multi-key operations are projected on each key they touch (`set_many` is a write of each of
//! its keys, a range read is a read of every workload key in its range, `delete_range` a delete
//! of each, and a restore a write of every workload key: its value in the snapshot, or a
//! delete): a necessary condition of linearizability of the whole history.

use std::collections::{BTreeMap, BTreeSet};

use crate::client::KEYS;
use crate::history::{Preference, Record, Reply, Request};
use crate::linearizability::{OpKind, Operation, Outcome, Verdict, check};

/// The most search steps spent on one key's history.
const SEARCH_BUDGET: u64 = 20_000_000;

fn keys_in(min: &[u8], max: &[u8]) -> impl Iterator<Item = Vec<u8>> {
    KEYS.iter()
        .filter(move |key| **key >= min && **key <= max)
        .map(|key| key.to_vec())
}

fn outcome(record: &Record) -> Outcome {
    match record.reply {
        Reply::Failed(_) => Outcome::Failed,
        Reply::Unknown(_) => Outcome::Unknown,
        _ => Outcome::Returned {
            at: record.complete,
        },
    }
}

/// The single-key operations a record stands for.
fn project(record: &Record) -> Vec<(Vec<u8>, OpKind)> {
    let write = |key: &[u8], value: Option<&[u8]>| {
        (
            key.to_vec(),
            OpKind::Write {
                value: value.map(<[u8]>::to_vec),
            },
        )
    };
    match (&record.request, &record.reply) {
        (Request::Get { preference, .. } | Request::GetRange { preference, .. }, _)
            if *preference == Preference::Local =>
        {
            Vec::new()
        }
        (Request::Get { .. }, Reply::Read(found)) => found
            .iter()
            .map(|(key, value)| {
                let observed = value.as_ref().map(|(value, _)| value.clone());
                (key.clone(), OpKind::Read { observed })
            })
            .collect(),
        (Request::GetRange { min, max, .. }, Reply::Read(found)) => {
            let found: BTreeMap<_, _> = found.iter().cloned().collect();
            keys_in(min, max)
                .map(|key| {
                    let observed = found.get(&key).cloned().flatten().map(|(value, _)| value);
                    (key, OpKind::Read { observed })
                })
                .collect()
        }
        (Request::Get { .. } | Request::GetRange { .. }, _) => Vec::new(),
        (Request::Set { key, value }, _) => vec![write(key, Some(value))],
        (Request::SetMany { pairs }, _) => pairs
            .iter()
            .map(|(key, value)| write(key, Some(value)))
            .collect(),
        (Request::Delete { key }, _) => vec![write(key, None)],
        (Request::DeleteRange { min, max }, _) => {
            keys_in(min, max).map(|key| write(&key, None)).collect()
        }
        (Request::Restore { pairs }, _) => {
            let restored: BTreeMap<_, _> = pairs.iter().cloned().collect();
            KEYS.iter()
                .map(|key| write(key, restored.get(*key).map(Vec::as_slice)))
                .collect()
        }
        (Request::CompareAndSet { key, expected, new }, reply) => vec![(
            key.clone(),
            OpKind::CompareAndSet {
                expected: expected.clone(),
                new: Some(new.clone()),
                succeeded: matches!(reply, Reply::Swapped(true)),
            },
        )],
    }
}

/// Checks every key's history; returns one message per violation.
pub fn linearizability(records: &[Record]) -> Vec<String> {
    let mut per_key: BTreeMap<Vec<u8>, Vec<Operation>> = BTreeMap::new();
    for record in records {
        for (key, kind) in project(record) {
            per_key.entry(key).or_default().push(Operation {
                client: record.client,
                invoke: record.invoke,
                outcome: outcome(record),
                kind,
            });
        }
    }
    let mut violations = Vec::new();
    for (key, operations) in per_key {
        let key = String::from_utf8_lossy(&key).into_owned();
        match check(None, &operations, SEARCH_BUDGET) {
            Verdict::Linearizable => {}
            Verdict::Violation(violation) => {
                violations.push(format!("key {key} is not linearizable: {violation}"));
            }
            Verdict::Inconclusive { explored } => violations.push(format!(
                "key {key}: linearizability search gave up after {explored} steps ({} operations)",
                operations.len()
            )),
        }
    }
    violations
}

/// A node, one of its boots, and a key.
type NodeBootKey = (usize, u64, Vec<u8>);

/// Local reads return only values some write tried to store, and on one node within one boot
/// the revision of a key never goes back for reads ordered in real time.
pub fn local_reads(records: &[Record]) -> Vec<String> {
    let mut written: BTreeMap<Vec<u8>, BTreeSet<Vec<u8>>> = BTreeMap::new();
    for record in records {
        if matches!(record.reply, Reply::Failed(_)) {
            continue;
        }
        for (key, kind) in project(record) {
            let value = match kind {
                OpKind::Write { value } => value,
                OpKind::CompareAndSet { new, .. } => new,
                OpKind::Read { .. } => None,
            };
            if let Some(value) = value {
                written.entry(key).or_default().insert(value);
            }
        }
    }
    let mut violations = Vec::new();
    // (node, boot, key) -> (invoke, completion, revision) of found local reads.
    let mut seen: BTreeMap<NodeBootKey, Vec<(u64, u64, u64)>> = BTreeMap::new();
    for record in records {
        let (Request::Get { preference, .. } | Request::GetRange { preference, .. }) =
            &record.request
        else {
            continue;
        };
        let (Preference::Local, Reply::Read(found)) = (preference, &record.reply) else {
            continue;
        };
        for (key, value) in found {
            let Some((value, revision)) = value else {
                continue;
            };
            if !written
                .get(key)
                .is_some_and(|values| values.contains(value))
            {
                violations.push(format!(
                    "local read on node {} returned {:?} for {:?}, which no write stored",
                    record.node + 1,
                    String::from_utf8_lossy(value),
                    String::from_utf8_lossy(key)
                ));
            }
            seen.entry((record.node, record.boot, key.clone()))
                .or_default()
                .push((record.invoke, record.complete, *revision));
        }
    }
    for ((node, boot, key), reads) in seen {
        for earlier in &reads {
            for later in &reads {
                if earlier.1 < later.0 && later.2 < earlier.2 {
                    violations.push(format!(
                        "local reads on node {} (boot {boot}) of {:?} went back from revision {} to {}",
                        node + 1,
                        String::from_utf8_lossy(&key),
                        earlier.2,
                        later.2
                    ));
                }
            }
        }
    }
    violations
}
