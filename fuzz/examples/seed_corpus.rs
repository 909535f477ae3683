//! Writes the seed inputs of each fuzz target into `fuzz/corpus/<target>/`: valid encodings of
//! every entry kind and command, snapshot files, Raft wire messages, and operation sequences. The fuzzer grows the
//! corpus from these. Run: `cargo run -p dbadger-fuzz --example seed_corpus`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use dbadger_core::codec::{encode_entry, encode_snapshot_meta};
use dbadger_core::raft_types::{
    EntryPayload, LeaderId, LogEntry, LogId, Membership, SnapshotMeta, StoredMembership,
};
use dbadger_core::snapshot_format::SnapshotWriter;
use dbadger_core::testing::Workload;
use dbadger_proto::v1;
use openraft::impls::BasicNode;
use openraft::vote::RaftLeaderId;
use prost::Message;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).expect("corpus dir");
    std::fs::write(dir.join(name), bytes).expect("corpus file");
}

fn membership() -> Membership {
    let nodes: BTreeMap<u64, BasicNode> = (1..=4)
        .map(|id| {
            (
                id,
                BasicNode {
                    addr: format!("10.0.0.{id}:7400"),
                },
            )
        })
        .collect();
    Membership::new(
        vec![BTreeSet::from([1, 2, 3]), BTreeSet::from([2, 3])],
        nodes,
    )
    .expect("valid")
}

fn main() {
    let log_id = |index| LogId::new(LeaderId::new(3, 1), index);
    write(
        "decode_log_entry",
        "seed-blank",
        &encode_entry(&LogEntry {
            log_id: log_id(1),
            payload: EntryPayload::Blank,
        }),
    );
    write(
        "decode_log_entry",
        "seed-membership",
        &encode_entry(&LogEntry {
            log_id: log_id(2),
            payload: EntryPayload::Membership(membership()),
        }),
    );
    let mut workload = Workload::new(7);
    for index in 0..24 {
        let entry = LogEntry {
            log_id: log_id(10 + index),
            payload: EntryPayload::Normal(workload.command()),
        };
        write(
            "decode_log_entry",
            &format!("seed-command-{index:02}"),
            &encode_entry(&entry),
        );
    }

    let meta = SnapshotMeta {
        last_log_id: Some(log_id(40)),
        last_membership: StoredMembership::new(Some(log_id(2)), membership()),
    };
    write(
        "decode_snapshot",
        "seed-empty",
        &SnapshotWriter::new(Vec::new(), &SnapshotMeta::default())
            .expect("header")
            .finish()
            .expect("trailer"),
    );
    let mut writer = SnapshotWriter::new(Vec::new(), &meta).expect("header");
    for (index, key) in [b"alpha".as_slice(), b"beta", b"gamma"].iter().enumerate() {
        writer
            .record(key, &vec![index as u8; index * 3], index as u64 + 1)
            .expect("record");
    }
    write(
        "decode_snapshot",
        "seed-three-records",
        &writer.finish().expect("trailer"),
    );

    raft_wire_seeds(&meta);

    for seed in 0..8u64 {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let bytes: Vec<u8> = (0..256)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        write("state_machine_ops", &format!("seed-{seed}"), &bytes);
    }
}

/// Valid Raft wire messages, each behind the byte that selects its kind in `raft_wire`.
fn raft_wire_seeds(meta: &SnapshotMeta) {
    let with_kind = |kind: u8, message: Vec<u8>| {
        let mut bytes = vec![kind];
        bytes.extend(message);
        bytes
    };
    let vote = v1::Vote {
        term: 3,
        node_id: 1,
        committed: true,
    };
    let wire_id = |index| v1::LogId {
        term: 3,
        leader_id: 1,
        index,
    };
    let mut workload = Workload::new(11);
    let entries: Vec<Vec<u8>> = (41..45)
        .map(|index| {
            encode_entry(&LogEntry {
                log_id: LogId::new(LeaderId::new(3, 1), index),
                payload: EntryPayload::Normal(workload.command()),
            })
        })
        .collect();
    let appends = [
        ("heartbeat", Vec::new(), Some(wire_id(40))),
        ("entries", entries, Some(wire_id(40))),
    ];
    for (name, entries, prev) in appends {
        let request = v1::AppendEntriesRequest {
            vote: Some(vote),
            prev_log_id: prev,
            entries,
            leader_commit: Some(wire_id(40)),
        };
        write(
            "raft_wire",
            &format!("seed-append-{name}"),
            &with_kind(0, request.encode_to_vec()),
        );
    }
    let header = v1::SnapshotHeader {
        vote: Some(vote),
        meta: encode_snapshot_meta(meta),
        size: 4096,
    };
    write(
        "raft_wire",
        "seed-snapshot-header",
        &with_kind(1, header.encode_to_vec()),
    );
    let vote_request = v1::VoteRequest {
        vote: Some(v1::Vote {
            committed: false,
            ..vote
        }),
        last_log_id: Some(wire_id(40)),
    };
    write(
        "raft_wire",
        "seed-vote",
        &with_kind(2, vote_request.encode_to_vec()),
    );
}
