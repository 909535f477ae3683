//! The individual conformance checks. Each states the property it proves and panics, naming
//! it, when a store breaks it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::ops::{Bound, ControlFlow};
use std::sync::mpsc;
use std::time::Duration;

use openraft::vote::RaftLeaderId;

use super::StoreFactory;
use super::workload::Workload;
use crate::command::Command;
use crate::limits::Limits;
use crate::query::Query;
use crate::raft_types::{
    EntryPayload, LeaderId, LogEntry, LogId, Membership, Node, StoredMembership, Vote,
};
use crate::response::Versioned;
use crate::rules;
use crate::snapshot::{build_snapshot, install_snapshot};
use crate::storage::memory::MemoryStateMachine;
use crate::storage::{
    AppliedState, FlushCallback, KvRead, KvWrite, LogBounds, LogStore, SnapshotData, SnapshotSink,
    StateMachineStore, StateRead, StateWrite,
};

/// How long a check waits for an asynchronous flush callback before declaring it lost.
const FLUSH_WAIT: Duration = Duration::from_secs(30);

fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(LeaderId::new(term, 1), index)
}

fn entry(term: u64, index: u64) -> LogEntry {
    let payload = if index.is_multiple_of(2) {
        EntryPayload::Normal(Command::Set {
            key: index.to_be_bytes().to_vec(),
            value: vec![7; index as usize % 5],
        })
    } else {
        EntryPayload::Blank
    };
    LogEntry {
        log_id: log_id(term, index),
        payload,
    }
}

fn membership(voters: &[u64]) -> Membership {
    let nodes: BTreeMap<u64, Node> = voters
        .iter()
        .map(|id| {
            (
                *id,
                Node {
                    addr: format!("127.0.0.1:{}", 7400 + id),
                },
            )
        })
        .collect();
    Membership::new(vec![voters.iter().copied().collect::<BTreeSet<_>>()], nodes)
        .expect("every voter has a node")
}

/// Appends and waits for the durability callback; panics if the append is refused, the
/// callback never comes or the flush failed.
pub fn append_durably(log: &impl LogStore, entries: Vec<LogEntry>) {
    let (sender, receiver) = mpsc::channel();
    log.append(
        entries,
        FlushCallback::new(move |result| drop(sender.send(result))),
    )
    .expect("append accepted");
    receiver
        .recv_timeout(FLUSH_WAIT)
        .expect("flush callback called")
        .expect("flush succeeded");
}

fn indices(entries: &[LogEntry]) -> Vec<u64> {
    entries.iter().map(|entry| entry.log_id.index).collect()
}

/// Every pair of a store, in key order.
pub fn dump(store: &impl StateMachineStore) -> Vec<(Vec<u8>, Versioned)> {
    let view = store.read().expect("read view");
    let mut pairs = Vec::new();
    view.scan(
        Bound::Unbounded,
        Bound::Unbounded,
        &mut |key, value, revision| {
            pairs.push((
                key.to_vec(),
                Versioned {
                    value: value.to_vec(),
                    revision,
                },
            ));
            ControlFlow::Continue(())
        },
    )
    .expect("scan");
    pairs
}

fn applied(store: &impl StateMachineStore) -> AppliedState {
    store
        .read()
        .expect("read view")
        .applied_state()
        .expect("applied state")
}

/// Applies commands through the rules, one committed transaction each, starting at `first`.
fn apply_commands(store: &impl StateMachineStore, first: u64, commands: &[Command]) {
    for (offset, command) in commands.iter().enumerate() {
        let index = first + offset as u64;
        let mut txn = store.write().expect("write txn");
        rules::apply(command, index, &mut txn, &Limits::default()).expect("apply");
        let mut state = txn.applied_state().expect("applied state");
        state.last_applied = Some(log_id(1, index));
        txn.set_applied_state(&state).expect("set applied");
        txn.commit().expect("commit");
    }
}

/// Entries read back are exactly those appended, truncation removes the tail, purging removes
/// the head and is remembered, and appending continues after either.
pub(super) fn log_append_read_truncate_purge<F: StoreFactory>(factory: &F) {
    let (_guard, log, _) = factory.create();
    assert_eq!(
        log.log_bounds().expect("bounds"),
        LogBounds::default(),
        "new log is empty"
    );
    append_durably(&log, (1..=10).map(|i| entry(1, i)).collect());
    let read = log.entries(1, 11).expect("read");
    assert_eq!(
        read,
        (1..=10).map(|i| entry(1, i)).collect::<Vec<_>>(),
        "entries read back"
    );
    assert_eq!(indices(&log.entries(4, 7).expect("read")), vec![4, 5, 6]);
    assert_eq!(log.log_bounds().expect("bounds").last, Some(log_id(1, 10)));

    log.truncate_after(Some(&log_id(1, 7))).expect("truncate");
    assert_eq!(
        indices(&log.entries(0, 100).expect("read")),
        (1..=7).collect::<Vec<_>>()
    );
    append_durably(&log, vec![entry(2, 8), entry(2, 9)]);
    assert_eq!(
        log.entries(8, 10).expect("read"),
        vec![entry(2, 8), entry(2, 9)]
    );

    log.purge_through(&log_id(1, 3)).expect("purge");
    let bounds = log.log_bounds().expect("bounds");
    assert_eq!(bounds.last_purged, Some(log_id(1, 3)), "purge remembered");
    assert_eq!(bounds.last, Some(log_id(2, 9)));
    assert_eq!(
        indices(&log.entries(0, 100).expect("read")),
        (4..=9).collect::<Vec<_>>()
    );

    log.purge_through(&log_id(2, 9)).expect("purge everything");
    let bounds = log.log_bounds().expect("bounds");
    assert_eq!(
        bounds.last,
        Some(log_id(2, 9)),
        "an empty log ends at its last purged id"
    );
    assert!(log.entries(0, 100).expect("read").is_empty());
    append_durably(&log, vec![entry(3, 10)]);
    assert_eq!(log.log_bounds().expect("bounds").last, Some(log_id(3, 10)));

    log.truncate_after(None).expect("truncate all");
    assert!(log.entries(0, 100).expect("read").is_empty());
}

/// Appending with a gap after the last entry is refused and changes nothing.
pub(super) fn append_refuses_gaps<F: StoreFactory>(factory: &F) {
    let (_guard, log, _) = factory.create();
    append_durably(&log, vec![entry(1, 1), entry(1, 2)]);
    let result = log.append(vec![entry(1, 4)], FlushCallback::new(|_| {}));
    assert!(result.is_err(), "append leaving a hole was accepted");
    assert_eq!(indices(&log.entries(0, 100).expect("read")), vec![1, 2]);
}

/// The durability callback of every append is called exactly once, with success.
pub(super) fn flush_callback_fires_once<F: StoreFactory>(factory: &F) {
    let (_guard, log, _) = factory.create();
    let (sender, receiver) = mpsc::channel();
    for batch in 0..5u64 {
        let sender = sender.clone();
        let entries = (1..=3).map(|i| entry(1, batch * 3 + i)).collect();
        log.append(
            entries,
            FlushCallback::new(move |result| drop(sender.send(result))),
        )
        .expect("append");
    }
    drop(sender);
    let outcomes: Vec<_> = receiver.iter().collect();
    assert_eq!(outcomes.len(), 5, "one callback per append");
    assert!(outcomes.iter().all(Result::is_ok), "every flush succeeded");
    assert_eq!(log.entries(0, 100).expect("read").len(), 15);
}

/// A saved vote and committed id are read back, and a later save replaces an earlier one.
pub(super) fn vote_and_committed_round_trip<F: StoreFactory>(factory: &F) {
    let (_guard, log, _) = factory.create();
    assert_eq!(log.vote().expect("vote"), None);
    log.save_vote(&Vote::new(3, 2)).expect("save vote");
    assert_eq!(log.vote().expect("vote"), Some(Vote::new(3, 2)));
    log.save_vote(&Vote::new_committed(4, 1))
        .expect("save vote");
    assert_eq!(log.vote().expect("vote"), Some(Vote::new_committed(4, 1)));
    assert_eq!(log.committed().expect("committed"), None);
    log.save_committed(Some(&log_id(4, 12)))
        .expect("save committed");
    assert_eq!(log.committed().expect("committed"), Some(log_id(4, 12)));
}

/// Scans visit exactly the keys within inclusive, exclusive and open bounds, in order, stop
/// when asked, and treat inverted bounds as empty.
pub(super) fn scan_honours_bounds<F: StoreFactory>(factory: &F) {
    let (_guard, _, machine) = factory.create();
    let keys: [&[u8]; 5] = [b"a", b"b", b"ba", b"c", b"d"];
    let commands: Vec<Command> = keys
        .iter()
        .map(|key| Command::Set {
            key: key.to_vec(),
            value: key.to_vec(),
        })
        .collect();
    apply_commands(&machine, 1, &commands);
    let view = machine.read().expect("read view");
    let scan = |lower: Bound<&[u8]>, upper: Bound<&[u8]>, stop_after: usize| {
        let mut seen = Vec::new();
        view.scan(lower, upper, &mut |key, _, _| {
            seen.push(key.to_vec());
            if seen.len() == stop_after {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .expect("scan");
        seen
    };
    let all = usize::MAX;
    let owned = |keys: &[&[u8]]| keys.iter().map(|k| k.to_vec()).collect::<Vec<_>>();
    assert_eq!(scan(Bound::Unbounded, Bound::Unbounded, all), owned(&keys));
    assert_eq!(
        scan(Bound::Included(b"b"), Bound::Included(b"c"), all),
        owned(&[b"b", b"ba", b"c"])
    );
    assert_eq!(
        scan(Bound::Excluded(b"b"), Bound::Excluded(b"d"), all),
        owned(&[b"ba", b"c"])
    );
    assert_eq!(
        scan(Bound::Included(b"b"), Bound::Unbounded, 2),
        owned(&[b"b", b"ba"])
    );
    assert!(scan(Bound::Included(b"d"), Bound::Included(b"a"), all).is_empty());
    assert_eq!(
        scan(Bound::Included(b""), Bound::Unbounded, all),
        owned(&keys),
        "empty lower bound"
    );
    assert!(
        scan(Bound::Unbounded, Bound::Included(b""), all).is_empty(),
        "empty upper bound"
    );
    assert!(scan(Bound::Excluded(b"b"), Bound::Excluded(b"b"), all).is_empty());
}

/// A write transaction dropped without commit leaves no trace: no data, no applied state; its
/// own reads saw its writes meanwhile.
pub(super) fn uncommitted_write_changes_nothing<F: StoreFactory>(factory: &F) {
    let (_guard, _, machine) = factory.create();
    apply_commands(
        &machine,
        1,
        &[Command::Set {
            key: b"kept".to_vec(),
            value: b"1".to_vec(),
        }],
    );
    let before_data = dump(&machine);
    let before_applied = applied(&machine);
    {
        let mut txn = machine.write().expect("write txn");
        txn.put(b"new", b"2", 2).expect("put");
        assert!(
            txn.remove(b"kept").expect("remove"),
            "the transaction sees the committed key"
        );
        assert_eq!(
            txn.get(b"new").expect("get").map(|v| v.value),
            Some(b"2".to_vec())
        );
        assert_eq!(
            txn.get(b"kept").expect("get"),
            None,
            "the transaction sees its own delete"
        );
        txn.clear().expect("clear");
        txn.set_applied_state(&AppliedState {
            last_applied: Some(log_id(1, 2)),
            membership: StoredMembership::new(Some(log_id(1, 2)), membership(&[1])),
        })
        .expect("set applied");
    }
    assert_eq!(
        dump(&machine),
        before_data,
        "data untouched by a dropped transaction"
    );
    assert_eq!(applied(&machine), before_applied, "applied state untouched");
}

/// Data, applied log id and membership become visible together at commit.
pub(super) fn applied_state_commits_with_data<F: StoreFactory>(factory: &F) {
    let (_guard, _, machine) = factory.create();
    assert_eq!(
        applied(&machine),
        AppliedState::default(),
        "nothing applied initially"
    );
    let state = AppliedState {
        last_applied: Some(log_id(2, 5)),
        membership: StoredMembership::new(Some(log_id(2, 4)), membership(&[1, 2, 3])),
    };
    let mut txn = machine.write().expect("write txn");
    txn.put(b"k", b"v", 5).expect("put");
    txn.set_applied_state(&state).expect("set applied");
    txn.commit().expect("commit");
    assert_eq!(applied(&machine), state);
    assert_eq!(
        machine.read().expect("view").get(b"k").expect("get"),
        Some(Versioned {
            value: b"v".to_vec(),
            revision: 5
        })
    );
}

/// Copies a snapshot through a sink of `target`, as the network does, optionally flipping one
/// byte on the way.
fn transfer<S: StateMachineStore>(
    source: &impl SnapshotData,
    target: &S,
    meta: &crate::raft_types::SnapshotMeta,
    corrupt_at: Option<usize>,
) -> S::Snapshot {
    let mut bytes = Vec::new();
    source
        .open()
        .expect("open")
        .read_to_end(&mut bytes)
        .expect("read snapshot");
    assert_eq!(
        bytes.len() as u64,
        source.size_bytes(),
        "size matches content"
    );
    if let Some(at) = corrupt_at {
        let at = at % bytes.len();
        bytes[at] ^= 0x40;
    }
    let mut sink = target.create_snapshot(meta).expect("sink");
    for chunk in bytes.chunks(7) {
        sink.write_all(chunk).expect("write chunk");
    }
    sink.finish().expect("finish")
}

fn filled_machine<F: StoreFactory>(factory: &F) -> (F::Guard, F::Machine) {
    let (guard, _, machine) = factory.create();
    let mut workload = Workload::new(42);
    let commands: Vec<Command> = (0..60).map(|_| workload.command()).collect();
    apply_commands(&machine, 1, &commands);
    let mut txn = machine.write().expect("write txn");
    let mut state = txn.applied_state().expect("applied");
    state.membership = StoredMembership::new(Some(log_id(1, 30)), membership(&[1, 2]));
    txn.set_applied_state(&state).expect("set applied");
    txn.commit().expect("commit");
    (guard, machine)
}

/// A snapshot built on one store and installed on another reproduces its data and applied
/// state exactly, and becomes the current snapshot on both.
pub(super) fn snapshot_round_trip<F: StoreFactory>(factory: &F) {
    let (_source_guard, source) = filled_machine(factory);
    assert!(
        source.current_snapshot().expect("current").is_none(),
        "no snapshot yet"
    );
    let (meta, snapshot) = build_snapshot(&source).expect("build");
    assert_eq!(meta.last_log_id, applied(&source).last_applied);
    let (current_meta, _) = source.current_snapshot().expect("current").expect("saved");
    assert_eq!(current_meta, meta);

    let (_target_guard, _, target) = factory.create();
    apply_commands(
        &target,
        1,
        &[Command::Set {
            key: b"stale".to_vec(),
            value: vec![],
        }],
    );
    let received = transfer(&snapshot, &target, &meta, None);
    install_snapshot(&target, &meta, received).expect("install");
    assert_eq!(dump(&target), dump(&source), "data reproduced");
    assert_eq!(
        applied(&target),
        applied(&source),
        "applied state reproduced"
    );
    let (target_meta, _) = target.current_snapshot().expect("current").expect("saved");
    assert_eq!(target_meta, meta);
}

/// Installing a damaged snapshot fails and leaves the current state exactly as it was.
pub(super) fn corrupt_snapshot_leaves_state_untouched<F: StoreFactory>(factory: &F) {
    let (_source_guard, source) = filled_machine(factory);
    let (meta, snapshot) = build_snapshot(&source).expect("build");
    let (_target_guard, _, target) = factory.create();
    apply_commands(
        &target,
        1,
        &[Command::Set {
            key: b"mine".to_vec(),
            value: b"1".to_vec(),
        }],
    );
    let before = (dump(&target), applied(&target));
    for corrupt_at in [0, 13, 40, 97, 211, usize::MAX - 1] {
        let received = transfer(&snapshot, &target, &meta, Some(corrupt_at));
        assert!(
            install_snapshot(&target, &meta, received).is_err(),
            "corruption at {corrupt_at} installed"
        );
        assert_eq!(
            (dump(&target), applied(&target)),
            before,
            "state changed by a failed install"
        );
    }
}

/// A snapshot captures one point: writes committed after its view was opened are not in it.
pub(super) fn snapshot_is_a_consistent_point<F: StoreFactory>(factory: &F) {
    let (_guard, machine) = filled_machine(factory);
    let expected = dump(&machine);
    let (meta, snapshot) = build_snapshot(&machine).expect("build");
    apply_commands(&machine, 1000, &[Command::DeleteAll]);
    let (_target_guard, _, target) = factory.create();
    let received = transfer(&snapshot, &target, &meta, None);
    install_snapshot(&target, &meta, received).expect("install");
    assert_eq!(
        dump(&target),
        expected,
        "snapshot holds the state at its build"
    );
}

/// A seeded command sequence applied through the rules gives the same responses and final
/// state as on the in-memory reference store, and range reads agree.
pub(super) fn agrees_with_reference_model<F: StoreFactory>(factory: &F, seed: u64) {
    let (_guard, _, machine) = factory.create();
    let reference = MemoryStateMachine::new();
    let mut workload = Workload::new(seed);
    let limits = Limits {
        max_response_bytes: 24,
        ..Limits::default()
    };
    for index in 1..=200u64 {
        let command = workload.command();
        let mut txn = machine.write().expect("write txn");
        let actual = rules::apply(&command, index, &mut txn, &Limits::default()).expect("apply");
        txn.commit().expect("commit");
        let mut reference_txn = reference.write().expect("reference txn");
        let expected = rules::apply(&command, index, &mut reference_txn, &Limits::default())
            .expect("reference apply");
        reference_txn.commit().expect("reference commit");
        assert_eq!(actual, expected, "seed {seed} step {index}: {command:?}");
        let query = Query::GetRange {
            min: workload.maybe_bound(),
            max: workload.maybe_bound(),
            count: workload.next_u64() % 4,
        };
        let view = machine.read().expect("view");
        let reference_view = reference.read().expect("reference view");
        assert_eq!(
            rules::read(&query, &view, &limits).expect("read"),
            rules::read(&query, &reference_view, &limits).expect("reference read"),
            "seed {seed} step {index}: {query:?}"
        );
    }
    assert_eq!(dump(&machine), reference.dump(), "seed {seed}: final state");
}
