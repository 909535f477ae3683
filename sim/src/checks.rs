//! The checks on a finished run's history: linearizability of writes and Leader reads, per key;
//! Local reads never invent a value and never go backwards within one process of a node; and the
//! revisions the run returned fit one log ([`crate::revisions`]).
//!
//! Multi-key operations are projected on each key they touch (`set_many` is a write of each of
//! its keys, `get_many`, a prefix or a range read is a read of every workload key in its scope,
//! `delete_many`, `delete_prefix`, `delete_range` and `delete_all` a delete of each, and a
//! restore a write of every workload key: its value in the snapshot, or a delete): a necessary
//! condition of linearizability of the whole history, completed by the revision checks, which
//! hold multi-key reads to one snapshot of the log. A compare-and-set that failed is a read of
//! the entry it returned; one that expects a revision expects the value the history shows at
//! that revision (values are unique in a run, so the two conditions are the same).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::history::{Expected, Preference, Record, Reply, Request};
use crate::linearizability::{OpKind, Operation, Outcome, Verdict, check};
use crate::revisions::{self, Revisions};
use crate::scope;

/// The most search steps spent on one key's history.
const SEARCH_BUDGET: u64 = 20_000_000;

fn outcome(record: &Record) -> Outcome {
    match record.reply {
        Reply::Failed(_) => Outcome::Failed,
        Reply::Unknown(_) => Outcome::Unknown,
        _ => Outcome::Returned {
            at: record.complete,
        },
    }
}

/// The value a compare-and-set's condition requires (`None`: absent). A revision the history
/// never shows for the key stands for a value nothing stores, so the condition cannot hold.
fn expected_value(key: &[u8], expected: &Expected, revisions: &Revisions) -> Option<Vec<u8>> {
    match expected {
        Expected::Value(value) => Some(value.clone()),
        Expected::Absent => None,
        Expected::Revision(revision) => Some(match revisions.value_at(key, *revision) {
            Some(value) => value.to_vec(),
            None => format!("\u{1}nothing known at revision {revision}").into_bytes(),
        }),
    }
}

/// The single-key operations a record stands for, in the register model.
fn project(record: &Record, revisions: &Revisions) -> Vec<(Vec<u8>, OpKind)> {
    let request = &record.request;
    match (request.preference(), &record.reply) {
        (Some(Preference::Local), _) => return Vec::new(),
        (Some(Preference::Leader), Reply::Read(found)) => {
            return scope::read_keys(request)
                .into_iter()
                .map(|key| {
                    let observed = found
                        .iter()
                        .find(|(read, _)| *read == key)
                        .and_then(|(_, entry)| entry.as_ref().map(|(value, _)| value.clone()));
                    (key, OpKind::Read { observed })
                })
                .collect();
        }
        (Some(Preference::Leader), _) => return Vec::new(),
        (None, _) => {}
    }
    match (request, &record.reply) {
        (
            Request::CompareAndSet { key, .. },
            Reply::Swapped {
                succeeded: false,
                current,
                ..
            },
        ) => {
            let observed = current.as_ref().map(|(value, _)| value.clone());
            vec![(key.clone(), OpKind::Read { observed })]
        }
        (Request::CompareAndSet { key, expected, new }, reply) => vec![(
            key.clone(),
            OpKind::CompareAndSet {
                expected: expected_value(key, expected, revisions),
                new: new.clone(),
                succeeded: matches!(
                    reply,
                    Reply::Swapped {
                        succeeded: true,
                        ..
                    }
                ),
            },
        )],
        (request, _) => scope::writes(request)
            .into_iter()
            .map(|(key, value)| (key, OpKind::Write { value }))
            .collect(),
    }
}

/// Every check of a finished history, and how long the checkers took (wall time: call this
/// outside the simulation, whose clock is simulated).
pub fn all(records: &[Record]) -> (Vec<String>, Duration) {
    let started = Instant::now();
    let mut violations = linearizability(records);
    violations.extend(local_reads(records));
    violations.extend(answers_in_scope(records));
    violations.extend(revisions::check(records));
    (violations, started.elapsed())
}

/// Checks every key's history; returns one message per violation.
pub fn linearizability(records: &[Record]) -> Vec<String> {
    let revisions = Revisions::learn(records);
    let mut per_key: BTreeMap<Vec<u8>, Vec<Operation>> = BTreeMap::new();
    for record in records {
        for (key, kind) in project(record, &revisions) {
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

/// A read answers only keys in its scope: `get` and `get_many` each asked key once, in the
/// order asked; a prefix or range read keys with the prefix or in the range, in ascending order.
pub fn answers_in_scope(records: &[Record]) -> Vec<String> {
    let mut violations = Vec::new();
    for (index, record) in records.iter().enumerate() {
        let Reply::Read(found) = &record.reply else {
            continue;
        };
        let answered: Vec<&Vec<u8>> = found.iter().map(|(key, _)| key).collect();
        let in_order = match &record.request {
            Request::Get { key, .. } => answered == [key],
            Request::GetMany { keys, .. } => answered.iter().copied().eq(keys.iter()),
            Request::GetPrefix { prefix, .. } => {
                answered.iter().all(|key| key.starts_with(prefix))
                    && answered.windows(2).all(|pair| pair[0] < pair[1])
            }
            Request::GetRange { min, max, .. } => {
                answered
                    .iter()
                    .all(|key| scope::in_range(key, min.as_deref(), max.as_deref()))
                    && answered.windows(2).all(|pair| pair[0] < pair[1])
            }
            _ => false,
        };
        if !in_order {
            let keys: Vec<String> = answered
                .iter()
                .map(|key| String::from_utf8_lossy(key).into_owned())
                .collect();
            let asked: Vec<String> = scope::read_keys(&record.request)
                .iter()
                .map(|key| String::from_utf8_lossy(key).into_owned())
                .collect();
            violations.push(format!(
                "{} #{index} answered keys {} where its scope holds {}",
                record.request.name(),
                keys.join(", "),
                asked.join(", ")
            ));
        }
    }
    violations
}

/// A node, one of its processes, and a key.
type NodeProcessKey = (usize, u64, Vec<u8>);

/// Local reads return only values some write tried to store, and on one node within one process
/// the revision of a key never goes back for reads ordered in real time.
pub fn local_reads(records: &[Record]) -> Vec<String> {
    let mut written: BTreeMap<Vec<u8>, BTreeSet<Vec<u8>>> = BTreeMap::new();
    for record in records {
        if matches!(record.reply, Reply::Failed(_)) {
            continue;
        }
        for (key, value) in scope::stored_values(&record.request) {
            written.entry(key).or_default().insert(value);
        }
    }
    let mut violations = Vec::new();
    // (node, process, key) -> (invoke, completion, revision) of found local reads.
    let mut seen: BTreeMap<NodeProcessKey, Vec<(u64, u64, u64)>> = BTreeMap::new();
    for record in records {
        let (Some(Preference::Local), Reply::Read(found)) =
            (record.request.preference(), &record.reply)
        else {
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
            let Some(process) = record.process else {
                continue;
            };
            seen.entry((record.node, process, key.clone()))
                .or_default()
                .push((record.invoke, record.complete, *revision));
        }
    }
    for ((node, process, key), reads) in seen {
        for earlier in &reads {
            for later in &reads {
                if earlier.1 < later.0 && later.2 < earlier.2 {
                    violations.push(format!(
                        "local reads on node {} (process {process}) of {:?} went back from revision {} to {}",
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
