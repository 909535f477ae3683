//! Writes the seed inputs of each fuzz target into `fuzz/corpus/<target>/`: valid encodings of
//! every entry kind and command, snapshot files, and operation sequences. The fuzzer grows the
//! corpus from these. Run: `cargo run -p dbadger-fuzz --example seed_corpus`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use dbadger_core::codec::encode_entry;
use dbadger_core::raft_types::{
    EntryPayload, LeaderId, LogEntry, LogId, Membership, SnapshotMeta, StoredMembership,
};
use dbadger_core::snapshot_format::SnapshotWriter;
use dbadger_core::testing::Workload;
use openraft::impls::BasicNode;
use openraft::vote::RaftLeaderId;

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
