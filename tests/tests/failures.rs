//! Failures on a 3-node cluster over loopback: leader failover with writes continuing, quorum
//! loss answered with a retryable error within the deadline, and a restarted follower catching
//! up through the log and, after compaction, through a snapshot.

use std::time::Instant;

use dbadger::ReadPreference;
use dbadger_tests::{REQUEST_TIMEOUT, eventually, restart, set_through_failover, start_cluster};

/// When the leader stops, the survivors elect a new one and writes continue through either;
/// while there is no leader, writes are refused as certainly not applied, so the client may
/// send them again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_failover_keeps_writes_going() {
    let mut nodes = start_cluster(3).await;
    let before = nodes[1]
        .db
        .set(b"before", b"1")
        .await
        .expect("write before failover");
    let leader = nodes
        .iter()
        .position(|node| node.db.is_leader())
        .expect("a leader");
    let old = nodes.remove(leader);
    old.db.close().await;
    for (i, node) in nodes.iter().enumerate() {
        let key = format!("after-{i}");
        let revision = set_through_failover(&node.db, key.as_bytes(), b"2").await;
        assert!(revision > before);
    }
    for node in &nodes {
        let entry = node
            .db
            .get(b"before", ReadPreference::Leader)
            .await
            .expect("acknowledged write survives");
        assert_eq!(entry.revision, before);
    }
    assert!(nodes.iter().any(|node| node.db.is_leader()), "a new leader");
    for node in &nodes {
        node.db.close().await;
    }
}

/// With two of three nodes gone, a write and a Leader read on the survivor fail with a
/// retryable error before the deadline has passed by much, never hang; a Local read still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_loss_is_unavailable_within_the_deadline() {
    let mut nodes = start_cluster(3).await;
    let revision = nodes[2]
        .db
        .set(b"k", b"v")
        .await
        .expect("write with quorum");
    let survivor = nodes.pop().expect("node");
    // A write answered through the leader may not have applied on this follower yet.
    survivor
        .db
        .wait_applied(revision)
        .await
        .expect("the survivor applies the write");
    for node in nodes {
        node.db.close().await;
    }
    let start = Instant::now();
    let write = survivor.db.set(b"k", b"lost").await;
    let elapsed = start.elapsed();
    assert!(
        matches!(write, Err(ref error) if error.is_retryable()),
        "{write:?}"
    );
    assert!(elapsed < REQUEST_TIMEOUT * 2, "took {elapsed:?}");
    let read = survivor.db.get(b"k", ReadPreference::Leader).await;
    assert!(
        matches!(read, Err(ref error) if error.is_retryable()),
        "{read:?}"
    );
    let local = survivor
        .db
        .get(b"k", ReadPreference::Local)
        .await
        .expect("local read without quorum");
    assert_eq!(local.value, b"v");
    survivor.db.close().await;
}

/// A follower that was down catches up when it comes back: through the log, and, when the
/// leader compacted the log meanwhile, through a snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_follower_catches_up() {
    let mut nodes = start_cluster(3).await;
    let follower = nodes
        .iter()
        .position(|node| !node.db.is_leader())
        .expect("a follower");
    let down = nodes.remove(follower);
    let addr = down.db.addr().to_owned();
    down.db.close().await;
    let mut last = 0;
    for i in 0..20u32 {
        last = nodes[0]
            .db
            .set(format!("k{i:02}"), i.to_be_bytes())
            .await
            .expect("write while down");
    }
    let back = restart(down).await;
    assert_eq!(back.db.addr(), addr);
    back.db
        .wait_applied(last)
        .await
        .expect("caught up through the log");
    let range = back
        .db
        .get_prefix(b"k", ReadPreference::Local)
        .await
        .expect("local read");
    assert_eq!(range.entries.len(), 20);

    // Down again while the leader writes enough to snapshot and purge past this node's log.
    let behind = back.db.stats().last_log_index;
    let addr = back.db.addr().to_owned();
    back.db.close().await;
    let dir = back.dir;
    drop(back.db);
    for i in 0..300u32 {
        last = nodes[0]
            .db
            .set(format!("s{i:03}"), i.to_be_bytes())
            .await
            .expect("write while down");
    }
    let leader = nodes
        .iter()
        .find(|node| node.db.is_leader())
        .expect("a leader");
    // The purge follows the snapshot build, off the write path: wait for it (bounded).
    eventually("the leader purged what the follower lacks", || {
        leader.db.stats().purged_index > behind
    })
    .await;
    assert!(
        leader.db.stats().purged_index > behind,
        "the leader purged what the follower lacks: {:?} behind {behind}",
        leader.db.stats()
    );
    let back = dbadger_tests::TestNode {
        db: start_resumed(&dir, &addr).await,
        dir,
    };
    back.db
        .wait_applied(last)
        .await
        .expect("caught up through a snapshot");
    assert!(
        back.db.stats().snapshot_index > behind,
        "installed a snapshot"
    );
    let range = back
        .db
        .get_prefix(b"s", ReadPreference::Local)
        .await
        .expect("local read");
    assert_eq!(range.entries.len(), 300);
    for node in nodes.iter().chain([&back]) {
        node.db.close().await;
    }
}

async fn start_resumed(dir: &tempfile::TempDir, addr: &str) -> dbadger::Db {
    let config = dbadger::Config {
        bind: addr.to_owned(),
        ..dbadger_tests::test_config(dir, dbadger::StartMode::Resume)
    };
    dbadger::Db::start(config).await.expect("node restarts")
}
