//! Conformance checks of the restore staging area and of restores applied through the rules:
//! staged pieces commit and roll back with their transaction, a restore replaces the key space
//! as the model says, a broken one changes nothing, and no snapshot is built while one is staged.

use openraft::vote::RaftLeaderId;

use super::StoreFactory;
use super::checks::dump;
use super::model::Model;
use crate::command::Command;
use crate::limits::Limits;
use crate::raft_types::{LeaderId, LogId, SnapshotMeta};
use crate::restore::{RestoreStep, snapshot_allowed};
use crate::rules;
use crate::snapshot_format::SnapshotWriter;
use crate::storage::{StateMachineStore, StateRead, StateWrite};

fn staged(store: &impl StateMachineStore, seq: u64) -> Option<Vec<u8>> {
    store
        .read()
        .expect("read view")
        .staged(seq)
        .expect("staged piece")
}

/// Staged pieces are part of the transaction: gone if it is dropped, kept once it commits,
/// and a clear is undone with it too.
pub(super) fn staging_commits_with_the_transaction<F: StoreFactory>(factory: &F) {
    let (_guard, _log, machine) = factory.create();
    {
        let mut txn = machine.write().expect("write");
        txn.stage(1, b"dropped").expect("stage");
        assert_eq!(txn.staged(1).expect("read own"), Some(b"dropped".to_vec()));
    }
    assert_eq!(
        staged(&machine, 1),
        None,
        "a dropped transaction stages nothing"
    );
    let mut txn = machine.write().expect("write");
    txn.stage(1, b"one").expect("stage");
    txn.stage(2, b"two").expect("stage");
    txn.commit().expect("commit");
    assert_eq!(
        staged(&machine, 2),
        Some(b"two".to_vec()),
        "committed pieces stay"
    );
    {
        let mut txn = machine.write().expect("write");
        txn.clear_staged().expect("clear");
        assert_eq!(txn.staged(1).expect("read own"), None);
    }
    assert_eq!(
        staged(&machine, 1),
        Some(b"one".to_vec()),
        "a dropped clear is undone"
    );
    let mut txn = machine.write().expect("write");
    txn.clear_staged().expect("clear");
    txn.commit().expect("commit");
    assert_eq!(
        staged(&machine, 1),
        None,
        "a committed clear empties the area"
    );
}

fn snapshot_file(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let meta = SnapshotMeta {
        last_log_id: Some(LogId::new(LeaderId::new(9, 9), 99)),
        last_membership: Default::default(),
    };
    let mut writer = SnapshotWriter::new(Vec::new(), &meta).expect("writer");
    for (key, value) in pairs {
        writer.record(key, value, 5).expect("record");
    }
    writer.finish().expect("finish")
}

/// Applies `commands` at consecutive revisions from `first` to the store (one transaction
/// each) and to the model; returns the store's answers, which must equal the model's.
fn apply_both(
    store: &impl StateMachineStore,
    model: &mut Model,
    first: u64,
    commands: &[Command],
) -> Vec<crate::response::Response> {
    let limits = Limits::default();
    let mut answers = Vec::new();
    for (offset, command) in commands.iter().enumerate() {
        let revision = first + offset as u64;
        let mut txn = store.write().expect("write");
        let answer = rules::apply(command, revision, &mut txn, &limits).expect("apply");
        txn.commit().expect("commit");
        let expected = model.apply(command, revision, &limits);
        assert_eq!(
            std::mem::discriminant(&answer),
            std::mem::discriminant(&expected),
            "{command}: the store answered {answer:?}, the model {expected:?}"
        );
        answers.push(answer);
    }
    answers
}

fn steps(file: &[u8], begin: u64, piece: usize) -> Vec<Command> {
    file.chunks(piece)
        .enumerate()
        .map(|(n, data)| {
            Command::Restore(RestoreStep::Piece {
                begin,
                seq: n as u64 + 1,
                data: data.to_vec(),
            })
        })
        .collect()
}

fn pairs_of(store: &impl StateMachineStore) -> Vec<(Vec<u8>, Vec<u8>, u64)> {
    dump(store)
        .into_iter()
        .map(|(key, versioned)| (key, versioned.value, versioned.revision))
        .collect()
}

fn model_pairs(model: &Model) -> Vec<(Vec<u8>, Vec<u8>, u64)> {
    model
        .pairs()
        .iter()
        .map(|(key, (value, revision))| (key.clone(), value.clone(), *revision))
        .collect()
}

/// Begin, pieces (one sent twice) and commit replace every pair with the file's, each at the
/// commit's revision, as the model says; while the restore is staged no snapshot is allowed;
/// a restore with a piece missing fails at its commit and changes nothing.
pub(super) fn restores_replace_the_key_space<F: StoreFactory>(factory: &F) {
    let (_guard, _log, machine) = factory.create();
    let mut model = Model::default();
    apply_both(
        &machine,
        &mut model,
        1,
        &[
            Command::Set {
                key: b"old".to_vec(),
                value: b"gone".to_vec(),
            },
            Command::Set {
                key: b"b".to_vec(),
                value: b"replaced".to_vec(),
            },
        ],
    );
    let file = snapshot_file(&[(b"a", b"1"), (b"b", b"2"), (b"c", b"3")]);
    let begin = Command::Restore(RestoreStep::Begin {
        bytes: file.len() as u64,
        pieces: file.len().div_ceil(16) as u64,
        crc: crc32fast::hash(&file),
    });
    apply_both(&machine, &mut model, 3, &[begin]);
    assert!(
        !snapshot_allowed(&machine.read().expect("view")).expect("staging"),
        "no snapshot while a restore is staged"
    );
    let mut pieces = steps(&file, 3, 16);
    pieces.insert(1, pieces[0].clone());
    let after_pieces = 4 + pieces.len() as u64;
    apply_both(&machine, &mut model, 4, &pieces);
    let answers = apply_both(
        &machine,
        &mut model,
        after_pieces,
        &[Command::Restore(RestoreStep::Commit { begin: 3 })],
    );
    assert_eq!(
        answers,
        [crate::response::Response::Restored {
            revision: after_pieces,
            keys: 3
        }]
    );
    assert_eq!(
        pairs_of(&machine),
        model_pairs(&model),
        "the store agrees with the model"
    );
    assert!(
        pairs_of(&machine)
            .iter()
            .all(|(_, _, revision)| *revision == after_pieces)
    );
    assert!(snapshot_allowed(&machine.read().expect("view")).expect("staging"));

    // A restore missing its second piece: its commit fails and nothing changes.
    let before = pairs_of(&machine);
    let next = after_pieces + 1;
    let broken_begin = Command::Restore(RestoreStep::Begin {
        bytes: file.len() as u64,
        pieces: file.len().div_ceil(16) as u64,
        crc: crc32fast::hash(&file),
    });
    let mut broken = steps(&file, next, 16);
    broken.remove(1);
    broken.insert(0, broken_begin);
    broken.push(Command::Restore(RestoreStep::Commit { begin: next }));
    let answers = apply_both(&machine, &mut model, next, &broken);
    assert!(matches!(
        answers.last(),
        Some(crate::response::Response::RestoreFailed { .. })
    ));
    assert_eq!(
        pairs_of(&machine),
        before,
        "a failed restore changes nothing"
    );
    assert!(snapshot_allowed(&machine.read().expect("view")).expect("staging"));
}
