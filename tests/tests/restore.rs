//! Restore through the log on real sockets and LMDB: the whole cluster switches to the
//! snapshot's state at one revision, byte-identically on every node; readers see the old state
//! or the new, never a mix; a leader that stops in the middle does not stop the restore; a
//! damaged file changes nothing; a new cluster can start from a saved snapshot.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dbadger::{Config, Db, Error, KeyValue, ReadPreference, StartMode};
use dbadger_tests::{
    TestNode, guarded, restart, set_through_failover, start_cluster_with, start_node_with,
};

const GUARD: Duration = Duration::from_secs(120);

/// Small requests, so that a restore of a few hundred kilobytes takes many pieces.
fn small_pieces(config: &mut Config) {
    config.limits.max_request_bytes = 64 << 10;
    config.limits.max_value_bytes = 16 << 10;
}

async fn write_keys(db: &Db, prefix: &str, count: u32, value: &[u8]) -> u64 {
    let mut revision = 0;
    for chunk in (0..count).collect::<Vec<_>>().chunks(50) {
        let keys: Vec<Vec<u8>> = chunk
            .iter()
            .map(|n| format!("{prefix}/{n:05}").into_bytes())
            .collect();
        let values = vec![value.to_vec(); keys.len()];
        revision = db.set_many(&keys, &values).await.expect("write");
    }
    revision
}

/// Every pair on `db`, in key order, read locally.
async fn everything(db: &Db) -> Vec<KeyValue> {
    let range = db
        .get_range(None, None, 0, ReadPreference::Local)
        .await
        .expect("local range");
    assert!(!range.more, "the whole key space fits one answer");
    range.entries
}

async fn close_all(nodes: &[TestNode]) {
    for node in nodes {
        node.db.close().await;
    }
}

/// Saves a snapshot of `db` (holding `count` keys under `prefix`) to `path`.
async fn backup(db: &Db, path: &Path) {
    let snapshot = db.snapshot().await.expect("snapshot");
    db.export_snapshot(&snapshot.id, path).expect("export");
}

/// A restore replaces every pair on every node, each at the restore's revision, and writes go
/// on above it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_replaces_the_state_on_every_node() {
    guarded(GUARD, async {
        let nodes = start_cluster_with(3, &small_pieces).await;
        let db = &nodes[0].db;
        write_keys(db, "old", 300, &[7; 200]).await;
        let file = nodes[0].dir.path().join("backup.snap");
        backup(db, &file).await;
        // After the backup: overwrite some, add others, delete one.
        write_keys(db, "old", 100, b"changed").await;
        write_keys(db, "extra", 50, b"x").await;
        db.delete(b"old/00299").await.expect("delete");

        let restorer = &nodes[1].db;
        let restored = restorer.restore(&file).await.expect("restore");
        assert_eq!(restored.keys, 300);
        for node in &nodes {
            node.db
                .wait_applied(restored.revision)
                .await
                .expect("applied everywhere");
        }
        let first = everything(&nodes[0].db).await;
        assert_eq!(first.len(), 300);
        assert!(first.iter().all(|pair| pair.key.starts_with(b"old/")
            && pair.value == [7; 200]
            && pair.revision == restored.revision));
        for node in &nodes[1..] {
            assert_eq!(everything(&node.db).await, first, "byte-identical");
        }
        let after = set_through_failover(restorer, b"after", b"restore").await;
        assert!(after > restored.revision);
        close_all(&nodes).await;
    })
    .await;
}

/// While a restore commits, readers on every node see the old key space or the new one,
/// whole: never some of each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_see_the_old_state_or_the_new_never_a_mix() {
    guarded(GUARD, async {
        let nodes = start_cluster_with(3, &small_pieces).await;
        let db = &nodes[0].db;
        write_keys(db, "new", 200, b"n").await;
        let file = nodes[0].dir.path().join("new.snap");
        backup(db, &file).await;
        db.delete_all().await.expect("clear");
        let old = write_keys(db, "old", 200, b"o").await;
        for node in &nodes {
            node.db
                .wait_applied(old)
                .await
                .expect("every node holds the old state");
        }

        let done = Arc::new(AtomicBool::new(false));
        let mut readers = Vec::new();
        for node in &nodes {
            let (db, done) = (node.db.clone(), Arc::clone(&done));
            readers.push(tokio::spawn(async move {
                let mut seen = (0, 0);
                while !done.load(Ordering::Relaxed) {
                    let pairs = everything(&db).await;
                    let old = pairs.iter().filter(|p| p.key.starts_with(b"old/")).count();
                    let new = pairs.iter().filter(|p| p.key.starts_with(b"new/")).count();
                    assert!(
                        (old, new) == (200, 0) || (old, new) == (0, 200),
                        "a mixed state: {old} old and {new} new pairs"
                    );
                    if old == 200 {
                        seen.0 += 1;
                    } else {
                        seen.1 += 1;
                    }
                    tokio::task::yield_now().await;
                }
                seen
            }));
        }
        let restored = nodes[2].db.restore(&file).await.expect("restore");
        for node in &nodes {
            node.db
                .wait_applied(restored.revision)
                .await
                .expect("applied");
        }
        done.store(true, Ordering::Relaxed);
        for reader in readers {
            let (old, new) = reader.await.expect("reader");
            assert!(old + new > 0, "the reader read");
        }
        close_all(&nodes).await;
    })
    .await;
}

/// The leader stops in the middle of a restore: the restoring node carries on with the new
/// leader (pieces whose answer was lost are sent again and count once), every running node
/// ends byte-identical, and the old leader, started again, converges to the same state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_survives_the_leader_stopping_in_the_middle() {
    guarded(GUARD, async {
        let mut nodes = start_cluster_with(3, &small_pieces).await;
        let db = &nodes[0].db;
        write_keys(db, "big", 2_000, &[3; 200]).await;
        let file = nodes[0].dir.path().join("big.snap");
        backup(db, &file).await;
        db.delete_all().await.expect("clear");

        let leader = nodes
            .iter()
            .position(|node| node.db.is_leader())
            .expect("a leader");
        let restorer = nodes[(leader + 1) % 3].db.clone();
        let before = restorer.stats().applied_index;
        let restoring = {
            let file = file.clone();
            tokio::spawn(async move { restorer.restore(&file).await })
        };
        // Stop the leader once the restore has begun and staged a few pieces.
        let observer = nodes[(leader + 2) % 3].db.clone();
        let started = std::time::Instant::now();
        while observer.stats().applied_index < before + 4 {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the restore began"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let old_leader = nodes.remove(leader);
        old_leader.db.close().await;
        let restored = restoring
            .await
            .expect("the restore task")
            .expect("the restore completes under the new leader");
        assert_eq!(restored.keys, 2_000);
        let back = restart(old_leader).await;
        nodes.push(back);
        for node in &nodes {
            node.db
                .wait_applied(restored.revision)
                .await
                .expect("applied");
        }
        let first = everything(&nodes[0].db).await;
        assert_eq!(first.len(), 2_000);
        for node in &nodes[1..] {
            assert_eq!(everything(&node.db).await, first, "byte-identical");
        }
        close_all(&nodes).await;
    })
    .await;
}

/// A damaged file is refused before anything is proposed; an unknown snapshot id is NOT_FOUND.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_snapshot_changes_nothing() {
    guarded(GUARD, async {
        let node = start_node_with(StartMode::Bootstrap, &|_| {}).await;
        write_keys(&node.db, "k", 20, b"v").await;
        let file = node.dir.path().join("ok.snap");
        backup(&node.db, &file).await;
        let mut bytes = std::fs::read(&file).expect("read");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        let damaged = node.dir.path().join("damaged.snap");
        std::fs::write(&damaged, &bytes).expect("write");
        let before = everything(&node.db).await;
        let refused = node.db.restore(&damaged).await;
        assert!(matches!(refused, Err(Error::Refused { .. })), "{refused:?}");
        assert_eq!(everything(&node.db).await, before);
        assert!(matches!(
            node.db.restore_snapshot("snapshot-9-9-9").await,
            Err(Error::UnknownSnapshot { .. })
        ));
        node.db.close().await;
    })
    .await;
}

/// A new cluster started from a snapshot file saved on another (etcd's `snapshot restore`):
/// a fresh node bootstraps and restores the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_cluster_starts_from_a_saved_snapshot() {
    guarded(GUARD, async {
        let old = start_node_with(StartMode::Bootstrap, &|_| {}).await;
        write_keys(&old.db, "kept", 120, b"data").await;
        let file = old.dir.path().join("saved.snap");
        backup(&old.db, &file).await;
        let expected: Vec<(Vec<u8>, Vec<u8>)> = everything(&old.db)
            .await
            .into_iter()
            .map(|pair| (pair.key, pair.value))
            .collect();
        old.db.close().await;

        let fresh = start_node_with(StartMode::Bootstrap, &|config| {
            config.restore_from = Some(file.clone());
        })
        .await;
        let got: Vec<(Vec<u8>, Vec<u8>)> = everything(&fresh.db)
            .await
            .into_iter()
            .map(|pair| (pair.key, pair.value))
            .collect();
        assert_eq!(got, expected);
        fresh.db.close().await;
    })
    .await;
}

/// A restore whose client went away (begun, never committed) holds snapshots back only until
/// the leader's snapshot timer sees it make no progress for a whole period and aborts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_restore_is_aborted_by_the_timer() {
    guarded(GUARD, async {
        let node = start_node_with(StartMode::Bootstrap, &|config| {
            config.snapshot_interval = Duration::from_millis(100);
        })
        .await;
        let begun = node
            .db
            .execute(dbadger::Command::Restore(dbadger::RestoreStep::Begin {
                bytes: 10,
                pieces: 1,
                crc: 0,
            }))
            .await
            .expect("begin");
        assert!(begun.revision().is_some());
        assert!(matches!(
            node.db.snapshot().await,
            Err(Error::Refused { .. })
        ));
        let started = std::time::Instant::now();
        loop {
            match node.db.snapshot().await {
                Ok(_) => break,
                Err(Error::Refused { .. }) if started.elapsed() < Duration::from_secs(10) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(error) => panic!("the abandoned restore was not aborted: {error:?}"),
            }
        }
        node.db.close().await;
    })
    .await;
}
