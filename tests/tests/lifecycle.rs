//! The cluster lifecycle on real sockets and LMDB: leaving on close (a leader hands over
//! first) and rejoining as a new node, removals and their refusals, learners (added, read
//! from, promoted, demoted), leadership transfer, snapshots on demand, on a timer, listed and
//! exported, and a restart with a changed address.

use std::time::Duration;

use dbadger::{Config, Db, Error, LEFT_MARK, ReadPreference, StartError, StartMode};
use dbadger_tests::{
    TestNode, eventually, guarded, set_through_failover, start_cluster_with, start_node_with,
    test_config,
};

const GUARD: Duration = Duration::from_secs(90);

fn leaving(config: &mut Config) {
    config.leave_on_stop = true;
}

fn voters(db: &Db) -> Vec<u64> {
    db.nodes()
        .into_iter()
        .filter(|(_, _, voter)| *voter)
        .map(|(id, _, _)| id)
        .collect()
}

fn leader_of(nodes: &[TestNode]) -> usize {
    nodes
        .iter()
        .position(|node| node.db.is_leader())
        .expect("a leader")
}

async fn close_all(nodes: &[TestNode]) {
    for node in nodes {
        node.db.close().await;
    }
}

/// A follower that closes leaves the membership and marks its data directory; started again
/// without `Join` it refuses, with `Join` it discards its old data and joins as a new node
/// with a new id, and catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_leaves_on_close_and_rejoins_as_a_new_node() {
    guarded(GUARD, async {
        let mut nodes = start_cluster_with(3, &leaving).await;
        let leader = leader_of(&nodes);
        let revision = nodes[leader].db.set(b"k", b"before").await.expect("write");
        let gone = nodes.remove((leader + 1) % 3);
        let old_id = gone.db.id();
        let addr = gone.db.addr().to_owned();
        gone.db.close().await;
        let TestNode { db, dir } = gone;
        drop(db);
        assert!(dir.path().join(LEFT_MARK).exists(), "the leave is recorded");
        for node in &nodes {
            assert!(
                node.db.nodes().iter().all(|(id, _, _)| *id != old_id),
                "node {old_id} left: {:?}",
                node.db.nodes()
            );
        }
        let writer = &nodes[leader_of(&nodes)].db;
        writer
            .set(b"k", b"after")
            .await
            .expect("two voters still commit");

        let resumed = Db::start(Config {
            bind: addr.clone(),
            ..test_config(&dir, StartMode::Resume)
        })
        .await;
        assert!(
            matches!(resumed, Err(StartError::Left(_))),
            "a node that left does not resume: {resumed:?}"
        );

        let seed = writer.addr().to_owned();
        let rejoined = Db::start(Config {
            bind: addr,
            leave_on_stop: true,
            ..test_config(&dir, StartMode::Join(vec![seed]))
        })
        .await
        .expect("rejoins with --join");
        assert_ne!(rejoined.id(), old_id, "a new identity");
        assert!(!dir.path().join(LEFT_MARK).exists());
        assert_eq!(voters(writer).len(), 3, "{:?}", writer.nodes());
        rejoined
            .wait_applied(revision + 1)
            .await
            .expect("catches up");
        let entry = rejoined
            .get(b"k", ReadPreference::Local)
            .await
            .expect("the rejoined node holds the data");
        assert_eq!(entry.value, b"after");
        rejoined.close().await;
        close_all(&nodes).await;
    })
    .await;
}

/// A leader that closes hands its leadership to another voter before it leaves: the others
/// lead at once (no election timeout to wait out) and keep committing as a two-node cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_hands_over_before_it_leaves() {
    guarded(GUARD, async {
        let mut nodes = start_cluster_with(3, &leaving).await;
        let old = nodes.remove(leader_of(&nodes));
        let old_id = old.db.id();
        old.db.close().await;
        let new_leader = nodes
            .iter()
            .find(|node| node.db.is_leader())
            .expect("another node leads as soon as the old leader has left");
        assert_eq!(voters(&new_leader.db).len(), 2);
        assert!(!voters(&new_leader.db).contains(&old_id));
        set_through_failover(&nodes[0].db, b"k", b"v").await;
        // The last two leave in turn; the last one is alone and stays.
        let second = nodes.remove(0);
        second.db.close().await;
        assert_eq!(nodes[0].db.nodes().len(), 1);
        assert_eq!(
            nodes[0].db.leave().await,
            Ok(false),
            "a node alone has nothing to leave"
        );
        close_all(&nodes).await;
    })
    .await;
}

/// Removing a stranger is NOT_FOUND from any node, removing or demoting the last voter is
/// refused, and removing a member twice is NOT_FOUND the second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removals_and_their_refusals() {
    guarded(GUARD, async {
        let nodes = start_cluster_with(2, &|_| {}).await;
        for node in &nodes {
            assert_eq!(
                node.db.remove_member(999).await,
                Err(Error::UnknownMember { id: 999 })
            );
            assert_eq!(
                node.db.demote(999).await,
                Err(Error::UnknownMember { id: 999 })
            );
        }
        let leader = leader_of(&nodes);
        let other = nodes[1 - leader].db.id();
        nodes[leader]
            .db
            .remove_member(other)
            .await
            .expect("remove the other voter");
        assert_eq!(voters(&nodes[leader].db), vec![nodes[leader].db.id()]);
        assert!(matches!(
            nodes[leader].db.remove_member(other).await,
            Err(Error::UnknownMember { .. })
        ));
        let me = nodes[leader].db.id();
        for refused in [
            nodes[leader].db.remove_member(me).await,
            nodes[leader].db.demote(me).await,
        ] {
            assert!(matches!(refused, Err(Error::Refused { .. })), "{refused:?}");
        }
        close_all(&nodes).await;
    })
    .await;
}

/// A learner receives every write, serves Local reads and forwards Leader reads, never
/// votes, and can be promoted; a voter can be demoted, the leader too (it hands over first),
/// and leadership can be moved to a chosen voter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learners_promotion_demotion_and_transfer() {
    guarded(GUARD, async {
        let mut nodes = start_cluster_with(3, &|_| {}).await;
        let learner = start_node_with(StartMode::Resume, &|_| {}).await;
        let leader = leader_of(&nodes);
        let admin = &nodes[(leader + 1) % 3].db;
        admin
            .add_learner(learner.db.id(), learner.db.addr())
            .await
            .expect("add a learner through a follower");
        assert!(
            learner
                .db
                .nodes()
                .iter()
                .any(|(id, _, voter)| *id == learner.db.id() && !voter)
                || admin
                    .nodes()
                    .iter()
                    .any(|(id, _, voter)| *id == learner.db.id() && !voter),
            "a learner, not a voter"
        );
        assert_eq!(voters(admin).len(), 3);
        let revision = admin.set(b"k", b"v").await.expect("write");
        learner.db.wait_applied(revision).await.expect("replicated");
        let local = learner
            .db
            .get(b"k", ReadPreference::Local)
            .await
            .expect("local");
        assert_eq!(local.value, b"v");
        let forwarded = learner
            .db
            .get(b"k", ReadPreference::Leader)
            .await
            .expect("a Leader read on a learner is forwarded");
        assert_eq!(forwarded.revision, revision);
        // Adding it again as a learner changes nothing; as a voter of its own address is
        // a promotion.
        admin
            .add_learner(learner.db.id(), learner.db.addr())
            .await
            .expect("idempotent");
        admin.promote(learner.db.id()).await.expect("promote");
        assert_eq!(voters(admin).len(), 4);
        admin.demote(learner.db.id()).await.expect("demote");
        assert_eq!(voters(admin).len(), 3);

        let target = nodes[(leader + 2) % 3].db.id();
        admin
            .transfer_leadership(Some(target))
            .await
            .expect("transfer to a chosen voter");
        let now = leader_of(&nodes);
        assert_eq!(nodes[now].db.id(), target);
        assert!(matches!(
            admin.transfer_leadership(Some(learner.db.id())).await,
            Err(Error::Refused { .. })
        ));

        let leader_id = nodes[now].db.id();
        nodes[now]
            .db
            .demote(leader_id)
            .await
            .expect("the leader demotes itself");
        eventually("another voter leads", || {
            nodes
                .iter()
                .any(|node| node.db.is_leader() && node.db.id() != leader_id)
        })
        .await;
        let other = nodes
            .iter()
            .find(|node| node.db.id() != leader_id)
            .expect("a voter");
        assert_eq!(voters(&other.db).len(), 2);
        assert!(!voters(&other.db).contains(&leader_id));
        nodes.push(learner);
        close_all(&nodes).await;
    })
    .await;
}

/// `snapshot` returns a durable file covering every applied write, `snapshots` lists it,
/// `export_snapshot` writes a verified copy, and an unknown id is NOT_FOUND.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_on_demand_listed_and_exported() {
    guarded(GUARD, async {
        let node = start_node_with(StartMode::Bootstrap, &|config| {
            config.snapshot_threshold = 100_000;
        })
        .await;
        let mut revision = 0;
        for n in 0..30u32 {
            revision = set_through_failover(&node.db, &n.to_be_bytes(), b"value").await;
        }
        let snapshot = node.db.snapshot().await.expect("snapshot");
        assert!(snapshot.index >= revision, "{snapshot:?} covers {revision}");
        assert!(node.db.stats().snapshot_index >= revision);
        let listed = node.db.snapshots().expect("list");
        assert_eq!(listed.first(), Some(&snapshot), "{listed:?}");

        let export = node.dir.path().join("backup.snap");
        let exported = node
            .db
            .export_snapshot(&snapshot.id, &export)
            .expect("export");
        assert_eq!(exported, snapshot);
        let file = std::fs::File::open(&export).expect("exported file");
        let (meta, pairs) =
            dbadger::snapshot_format::verify(std::io::BufReader::new(file)).expect("valid");
        assert_eq!(pairs, 30);
        assert_eq!(meta.last_log_id.map(|id| id.index), Some(snapshot.index));

        assert_eq!(
            node.db
                .export_snapshot("snapshot-9-9-9", &export)
                .map(|_| ()),
            Err(Error::UnknownSnapshot {
                id: "snapshot-9-9-9".to_owned()
            })
        );
        node.db.close().await;
    })
    .await;
}

/// With `snapshot_interval` short and the threshold out of reach, the timer alone takes a
/// snapshot once something was applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshot_timer_honours_the_interval() {
    guarded(GUARD, async {
        let node = start_node_with(StartMode::Bootstrap, &|config| {
            config.snapshot_threshold = 100_000;
            config.snapshot_interval = Duration::from_millis(200);
        })
        .await;
        let revision = set_through_failover(&node.db, b"k", b"v").await;
        eventually("the timer took a snapshot", || {
            node.db.stats().snapshot_index >= revision
        })
        .await;
        node.db.close().await;
    })
    .await;
}

/// A node restarted on its data with another address (port) keeps its id and membership,
/// and the cluster records the new address and replicates to it there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_a_new_address_updates_the_membership() {
    guarded(GUARD, async {
        let mut nodes = start_cluster_with(3, &|_| {}).await;
        let leader = leader_of(&nodes);
        let moved = nodes.remove((leader + 1) % 3);
        let id = moved.db.id();
        let old_addr = moved.db.addr().to_owned();
        moved.db.close().await;
        let TestNode { db, dir } = moved;
        drop(db);
        let restarted = Db::start(test_config(&dir, StartMode::Resume))
            .await
            .expect("restart on another port");
        assert_eq!(restarted.id(), id, "the same identity");
        let new_addr = restarted.addr().to_owned();
        assert_ne!(new_addr, old_addr);
        let observer = &nodes[0].db;
        eventually("the membership records the new address", || {
            observer
                .nodes()
                .iter()
                .any(|(member, addr, voter)| *member == id && *addr == new_addr && *voter)
        })
        .await;
        let revision = set_through_failover(observer, b"moved", b"yes").await;
        restarted
            .wait_applied(revision)
            .await
            .expect("replicated to the new address");
        restarted.close().await;
        close_all(&nodes).await;
    })
    .await;
}

/// A node removed while it was down, started again at another address on its old data (its
/// log does not show the removal), announces its new address: the leader must not add it back,
/// as an announcement only ever changes a member's address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_removed_while_down_is_not_added_back_by_its_announcement() {
    guarded(GUARD, async {
        let mut nodes = start_cluster_with(3, &|_| {}).await;
        let leader = leader_of(&nodes);
        let removed = nodes.remove((leader + 1) % 3);
        let id = removed.db.id();
        removed.db.close().await;
        let TestNode { db, dir } = removed;
        drop(db);
        let leader_db = &nodes[leader_of(&nodes)].db;
        leader_db
            .remove_member(id)
            .await
            .expect("removed while down");
        let restarted = Db::start(test_config(&dir, StartMode::Resume))
            .await
            .expect("restart on another port");
        assert!(
            restarted.nodes().iter().any(|(member, _, _)| *member == id),
            "its own log still shows it as a member"
        );
        // Its announcement is refused (it is not a member); watch the membership for longer
        // than several announcement rounds.
        let watched = std::time::Instant::now();
        while watched.elapsed() < Duration::from_secs(3) {
            for node in &nodes {
                assert!(
                    node.db.nodes().iter().all(|(member, _, _)| *member != id),
                    "node {id} was added back: {:?}",
                    node.db.nodes()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        restarted.close().await;
        close_all(&nodes).await;
    })
    .await;
}

/// Binding every interface without saying where the node is reached is a start error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_every_interface_needs_advertise() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let started = Db::start(Config {
        bind: "0.0.0.0:0".to_owned(),
        ..test_config(&dir, StartMode::Bootstrap)
    })
    .await;
    assert!(matches!(started, Err(StartError::Config(_))), "{started:?}");
}
