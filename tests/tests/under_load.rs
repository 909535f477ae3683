//! The lifecycle under a steady write load, on real sockets and LMDB: every node restarted in
//! turn, the leader leaving, and a minute of writes with a small snapshot threshold while a
//! follower keeps restarting (so logs are purged and snapshots built and installed all along:
//! openraft issue 2116 reports a snapshot/purge race that panics the Raft core under such a
//! load), and a restore while clients write. In each, no acknowledged write may be lost (or,
//! across the restore, survive it when it came before) and the writes must keep going.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use dbadger::{Config, Db, Error, ReadPreference};
use dbadger_tests::{TestNode, eventually, guarded, restart, start_cluster_with};
use tokio::task::JoinHandle;

/// The nodes the writers may use: `None` while a node is down.
type Reachable = Arc<RwLock<Vec<Option<Db>>>>;

fn reachable(nodes: &[TestNode]) -> Reachable {
    Arc::new(RwLock::new(
        nodes.iter().map(|node| Some(node.db.clone())).collect(),
    ))
}

fn set_reachable(reachable: &Reachable, index: usize, db: Option<Db>) {
    reachable.write().expect("the node list")[index] = db;
}

/// Writers that each write keys of their own, once each, through the reachable nodes in turn.
struct Load {
    stop: Arc<AtomicBool>,
    acknowledged: Arc<AtomicU64>,
    writers: Vec<JoinHandle<Vec<Acknowledged>>>,
}

/// One acknowledged write: its number, when it was sent and when its answer came.
#[derive(Clone, Copy, Debug)]
struct Acknowledged {
    n: u64,
    sent: Instant,
    answered: Instant,
}

fn key(writer: u64, n: u64) -> Vec<u8> {
    format!("w{writer}-{n:08}").into_bytes()
}

fn value(writer: u64, n: u64) -> Vec<u8> {
    format!("value {writer}/{n}").into_bytes()
}

impl Load {
    fn start(reachable: &Reachable, writers: u64) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged = Arc::new(AtomicU64::new(0));
        let writers = (0..writers)
            .map(|writer| {
                let (reachable, stop) = (Arc::clone(reachable), Arc::clone(&stop));
                let acknowledged = Arc::clone(&acknowledged);
                tokio::spawn(async move {
                    let mut acked = Vec::new();
                    let (mut n, mut turn) = (0u64, writer as usize);
                    while !stop.load(Ordering::SeqCst) {
                        turn += 1;
                        let db = {
                            let nodes = reachable.read().expect("the node list");
                            nodes[turn % nodes.len()].clone()
                        };
                        let Some(db) = db else { continue };
                        let sent = Instant::now();
                        match db.set(key(writer, n), value(writer, n)).await {
                            Ok(_) => {
                                acked.push(Acknowledged {
                                    n,
                                    sent,
                                    answered: Instant::now(),
                                });
                                acknowledged.fetch_add(1, Ordering::SeqCst);
                                n += 1;
                            }
                            // Not applied: the same key may be sent again.
                            Err(error) if error.is_safe_to_retry() => {
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                            // Perhaps applied: go on with the next key; only acknowledged
                            // keys are checked.
                            Err(_) => {
                                n += 1;
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        }
                    }
                    acked
                })
            })
            .collect();
        Load {
            stop,
            acknowledged,
            writers,
        }
    }

    fn acknowledged(&self) -> u64 {
        self.acknowledged.load(Ordering::SeqCst)
    }

    /// Waits until `more` further writes are acknowledged (at most 30 s).
    async fn progresses(&self, more: u64, what: &str) {
        let target = self.acknowledged() + more;
        let started = Instant::now();
        while self.acknowledged() < target {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "writes stalled {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the writers; the acknowledged writes, per writer.
    async fn stop(self) -> Vec<Vec<Acknowledged>> {
        self.stop.store(true, Ordering::SeqCst);
        let mut acked = Vec::new();
        for writer in self.writers {
            acked.push(writer.await.expect("a writer"));
        }
        acked
    }
}

/// Every acknowledged write reads back on every node of `nodes`: a last write through the
/// first, which every node then applies, orders after all of them, so Local reads on a node
/// that applied it must see each one.
async fn assert_all_acknowledged_present(nodes: &[&Db], acked: &[Vec<Acknowledged>]) {
    let revision = nodes[0].set(b"last", b"write").await.expect("a last write");
    for db in nodes {
        db.wait_applied(revision).await.expect("caught up");
        assert_eq!(db.failure(), None, "node {} failed", db.id());
        for (writer, keys) in acked.iter().enumerate() {
            let writer = writer as u64;
            for &Acknowledged { n, .. } in keys {
                let found = db
                    .get(key(writer, n), ReadPreference::Local)
                    .await
                    .unwrap_or_else(|error| panic!("read of w{writer}-{n}: {error}"));
                assert_eq!(
                    found.value,
                    value(writer, n),
                    "acknowledged write w{writer}-{n} on node {}",
                    db.id()
                );
            }
        }
    }
    let total: usize = acked.iter().map(Vec::len).sum();
    eprintln!(
        "{total} acknowledged writes present on {} nodes",
        nodes.len()
    );
}

async fn close_all(nodes: &[TestNode]) {
    for node in nodes {
        node.db.close().await;
    }
}

fn leader_index(nodes: &[TestNode]) -> usize {
    nodes
        .iter()
        .position(|node| node.db.is_leader())
        .expect("a leader")
}

/// Every node in turn, the leader included, is stopped and started again on its data while
/// two writers keep writing through the others: writes go on while each node is down, the
/// restarted node catches up, and no acknowledged write is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_restarts_in_turn_while_clients_write() {
    guarded(Duration::from_secs(120), async {
        let mut nodes = start_cluster_with(3, &|_| {}).await;
        let reachable = reachable(&nodes);
        let load = Load::start(&reachable, 2);
        load.progresses(50, "before the restarts").await;
        for index in 0..nodes.len() {
            set_reachable(&reachable, index, None);
            let node = nodes.remove(index);
            // Down: the writes must go on through the other two.
            let restarted = restart(node).await;
            load.progresses(20, &format!("after node {index} restarted"))
                .await;
            set_reachable(&reachable, index, Some(restarted.db.clone()));
            nodes.insert(index, restarted);
        }
        load.progresses(20, "after every restart").await;
        let acked = load.stop().await;
        let dbs: Vec<&Db> = nodes.iter().map(|node| &node.db).collect();
        assert_all_acknowledged_present(&dbs, &acked).await;
        close_all(&nodes).await;
    })
    .await;
}

fn leaving(config: &mut Config) {
    config.leave_on_stop = true;
}

/// The leader closes, and so leaves (handing leadership over first), while two writers keep
/// writing through every node: the writes go on through the other two, which form a two-voter
/// cluster, and no acknowledged write is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_leaves_under_load() {
    guarded(Duration::from_secs(90), async {
        let mut nodes = start_cluster_with(3, &leaving).await;
        let reachable = reachable(&nodes);
        let load = Load::start(&reachable, 2);
        load.progresses(50, "before the leave").await;
        let leader = leader_index(&nodes);
        let gone = nodes.remove(leader);
        let gone_id = gone.db.id();
        set_reachable(&reachable, leader, None);
        gone.db.close().await;
        load.progresses(50, "after the leader left").await;
        let acked = load.stop().await;
        for node in &nodes {
            let voters: Vec<u64> = node
                .db
                .nodes()
                .into_iter()
                .filter(|(_, _, voter)| *voter)
                .map(|(id, _, _)| id)
                .collect();
            assert_eq!(voters.len(), 2, "two voters left: {voters:?}");
            assert!(!voters.contains(&gone_id), "node {gone_id} left");
        }
        let dbs: Vec<&Db> = nodes.iter().map(|node| &node.db).collect();
        assert_all_acknowledged_present(&dbs, &acked).await;
        close_all(&nodes).await;
    })
    .await;
}

/// A minute of writes from four writers with a snapshot every 50 entries and 10 trailing log
/// entries, while one follower is restarted every 10 s (it comes back behind purged logs and
/// must install a snapshot): no node fails, snapshots keep being built, the follower catches
/// up each time, and no acknowledged write is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_under_a_minute_of_sustained_writes() {
    guarded(Duration::from_secs(180), async {
        let mut nodes = start_cluster_with(3, &|_| {}).await;
        let reachable = reachable(&nodes);
        let load = Load::start(&reachable, 4);
        let started = Instant::now();
        let mut restarts = 0;
        let mut snapshot_indices = Vec::new();
        while started.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_secs(10)).await;
            let follower = (leader_index(&nodes) + 1) % nodes.len();
            set_reachable(&reachable, follower, None);
            let node = nodes.remove(follower);
            let restarted = restart(node).await;
            set_reachable(&reachable, follower, Some(restarted.db.clone()));
            nodes.insert(follower, restarted);
            restarts += 1;
            for node in &nodes {
                assert_eq!(node.db.failure(), None, "node {} failed", node.db.id());
            }
            snapshot_indices.push(nodes[leader_index(&nodes)].db.stats().snapshot_index);
        }
        let acked = load.stop().await;
        let total: usize = acked.iter().map(Vec::len).sum();
        assert!(
            total > 1_000,
            "a sustained load: {total} writes acknowledged"
        );
        assert!(
            snapshot_indices.windows(2).all(|pair| pair[1] > pair[0]),
            "the leader built snapshots all along: {snapshot_indices:?}"
        );
        let dbs: Vec<&Db> = nodes.iter().map(|node| &node.db).collect();
        assert_all_acknowledged_present(&dbs, &acked).await;
        eventually("every node purged its log behind a snapshot", || {
            nodes.iter().all(|node| node.db.stats().purged_index > 0)
        })
        .await;
        assert!(restarts >= 5, "the follower restarted {restarts} times");
        close_all(&nodes).await;
    })
    .await;
}

/// A restore while two writers write keys the snapshot does not hold: afterwards every node
/// holds the snapshot's pairs, no write answered before the restore began, and every write
/// sent after it returned (a write in between may land on either side of its commit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_while_clients_write() {
    guarded(Duration::from_secs(90), async {
        let nodes = start_cluster_with(3, &|_| {}).await;
        let db = nodes[0].db.clone();
        for n in 0..300u64 {
            db.set(format!("snap/{n:04}"), b"restored")
                .await
                .expect("a write for the snapshot");
        }
        let file = nodes[0].dir.path().join("backup.snap");
        let snapshot = db.snapshot().await.expect("a snapshot");
        db.export_snapshot(&snapshot.id, &file).expect("exported");
        db.delete_all().await.expect("cleared");

        let reachable = reachable(&nodes);
        let load = Load::start(&reachable, 2);
        load.progresses(50, "before the restore").await;
        let began = Instant::now();
        let restored = nodes[1].db.restore(&file).await.expect("the restore");
        let returned = Instant::now();
        load.progresses(50, "after the restore").await;
        let acked = load.stop().await;
        assert_eq!(restored.keys, 300, "the snapshot's pairs");

        let last = db.set(b"last", b"write").await.expect("a last write");
        let (mut wiped, mut kept) = (0, 0);
        for node in &nodes {
            node.db.wait_applied(last).await.expect("caught up");
            for n in 0..300u64 {
                let found = node
                    .db
                    .get(format!("snap/{n:04}"), ReadPreference::Local)
                    .await
                    .expect("a restored pair");
                assert_eq!(found.value, b"restored");
            }
            for (writer, writes) in acked.iter().enumerate() {
                let writer = writer as u64;
                for write in writes {
                    let found = node
                        .db
                        .get(key(writer, write.n), ReadPreference::Local)
                        .await;
                    if write.answered < began {
                        assert!(
                            matches!(found, Err(Error::NotFound)),
                            "w{writer}-{} was answered before the restore began and survived it",
                            write.n
                        );
                        wiped += 1;
                    } else if write.sent > returned {
                        let found = found.unwrap_or_else(|error| {
                            panic!("w{writer}-{} sent after the restore: {error}", write.n)
                        });
                        assert_eq!(found.value, value(writer, write.n));
                        kept += 1;
                    }
                }
            }
        }
        assert!(
            wiped > 0 && kept > 0,
            "writes on both sides: {wiped} wiped, {kept} kept"
        );
        close_all(&nodes).await;
    })
    .await;
}
