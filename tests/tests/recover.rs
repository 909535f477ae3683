//! Recovery after quorum loss on real sockets and LMDB: a survivor started in recover mode
//! leads a new one-node cluster with everything it held, under a new id, a new cluster id and a
//! higher term; new nodes join it; a lost member that comes back on its old data is fenced off;
//! a recovery while a quorum still answers is refused.

use std::time::{Duration, Instant};

use dbadger::{Config, Db, ReadPreference, StartError, StartMode};
use dbadger_tests::{
    TestNode, eventually, guarded, set_through_failover, start_cluster, start_node_with,
    test_config,
};

const GUARD: Duration = Duration::from_secs(120);

fn restart_config(dir: &tempfile::TempDir, addr: &str, start: StartMode) -> Config {
    Config {
        bind: addr.to_owned(),
        ..test_config(dir, start)
    }
}

/// Stops a node, keeping its data directory and address.
async fn stop(node: TestNode) -> (tempfile::TempDir, String) {
    let TestNode { db, dir } = node;
    let addr = db.addr().to_owned();
    db.close().await;
    drop(db);
    (dir, addr)
}

/// The whole story: quorum lost, a survivor recovered, two new nodes joined, an old member back
/// on its old data refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_survivor_recovers_into_a_new_cluster_and_the_old_members_are_fenced() {
    guarded(GUARD, async {
        let mut nodes = start_cluster(3).await;
        let mut last = 0;
        for n in 0..40u32 {
            last = set_through_failover(&nodes[0].db, format!("k{n:02}").as_bytes(), b"v").await;
        }
        for node in &nodes {
            node.db.wait_applied(last).await.expect("replicated");
        }
        let old_term = nodes[0].db.stats().term;
        let old_cluster = nodes[0].db.stats().cluster_id;
        assert_ne!(old_cluster, 0, "a bootstrapped cluster has an id");
        let survivor = nodes.remove(0);
        let survivor_id = survivor.db.id();
        let (lost_b_dir, lost_b_addr) = stop(nodes.remove(0)).await;
        let lost_c = stop(nodes.remove(0)).await;
        let (dir, addr) = stop(survivor).await;

        let recovered = Db::start(restart_config(&dir, &addr, StartMode::Recover))
            .await
            .expect("the survivor recovers");
        assert_ne!(recovered.id(), survivor_id, "a new identity");
        eventually("the survivor leads", || recovered.is_leader()).await;
        let stats = recovered.stats();
        assert!(
            stats.term > old_term,
            "a higher term: {} > {old_term}",
            stats.term
        );
        assert_ne!(stats.cluster_id, old_cluster, "a new cluster id");
        assert_eq!(recovered.nodes().len(), 1);
        assert!(
            dir.path().join("lmdb.before-recover-1").exists(),
            "the old data is kept"
        );
        let kept = recovered
            .get_prefix(b"k", ReadPreference::Leader)
            .await
            .expect("read");
        assert_eq!(kept.entries.len(), 40, "everything it held");
        let revision = set_through_failover(&recovered, b"after", b"recovery").await;
        assert!(revision > last);

        // Two new nodes join as usual and catch up; every old key reads back, linearizably,
        // from every member of the new cluster.
        let joiner =
            start_node_with(StartMode::Join(vec![recovered.addr().to_owned()]), &|_| {}).await;
        joiner.db.wait_applied(revision).await.expect("caught up");
        assert_eq!(joiner.db.stats().cluster_id, stats.cluster_id);
        let second =
            start_node_with(StartMode::Join(vec![joiner.db.addr().to_owned()]), &|_| {}).await;
        second.db.wait_applied(revision).await.expect("caught up");
        for db in [&recovered, &joiner.db, &second.db] {
            let old = db
                .get_prefix(b"k", ReadPreference::Leader)
                .await
                .expect("a Leader read");
            assert_eq!(old.entries.len(), 40, "every old key on node {}", db.id());
        }
        assert_eq!(recovered.nodes().len(), 3, "three members");

        // A lost member comes back on its old data: it cannot disturb the new cluster.
        let lost_b = Db::start(restart_config(&lost_b_dir, &lost_b_addr, StartMode::Resume))
            .await
            .expect("the old member starts");
        let watched = Instant::now();
        while watched.elapsed() < Duration::from_secs(3) {
            assert!(recovered.is_leader(), "the recovered node keeps leading");
            assert!(!lost_b.is_leader(), "the old member leads nothing");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let written = set_through_failover(&recovered, b"still", b"writable").await;
        joiner
            .db
            .wait_applied(written)
            .await
            .expect("the new cluster works");
        assert!(
            lost_b.get(b"after", ReadPreference::Local).await.is_err(),
            "the old member received nothing of the new cluster"
        );
        lost_b.close().await;
        second.db.close().await;
        joiner.db.close().await;
        let new_id = recovered.id();
        let recovered_addr = recovered.addr().to_owned();
        recovered.close().await;
        drop(recovered);
        drop(lost_c);
        // A restart on the recovered data keeps the new identity.
        let again = Db::start(restart_config(&dir, &recovered_addr, StartMode::Resume))
            .await
            .expect("restarts");
        assert_eq!(again.id(), new_id, "the recovered identity is kept");
        again.close().await;
    })
    .await;
}

/// A node whose old cluster still has a quorum is not recovered (that would split the
/// cluster), and its data is untouched: it resumes as a member afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovering_while_a_quorum_answers_is_refused() {
    guarded(GUARD, async {
        let mut nodes = start_cluster(3).await;
        let revision = set_through_failover(&nodes[0].db, b"k", b"v").await;
        let follower = nodes
            .iter()
            .position(|node| !node.db.is_leader())
            .expect("a follower");
        let node = nodes.remove(follower);
        let id = node.db.id();
        let (dir, addr) = stop(node).await;
        let refused = Db::start(restart_config(&dir, &addr, StartMode::Recover)).await;
        assert!(
            matches!(refused, Err(StartError::Recover(_))),
            "refused: {refused:?}"
        );
        assert!(!dir.path().join("lmdb.before-recover-1").exists());
        let resumed = Db::start(restart_config(&dir, &addr, StartMode::Resume))
            .await
            .expect("resumes");
        assert_eq!(resumed.id(), id, "the same identity");
        resumed
            .wait_applied(revision)
            .await
            .expect("still a member");
        resumed.close().await;
        for node in &nodes {
            node.db.close().await;
        }
    })
    .await;
}

/// Forced while the rest of the old cluster still runs (an operator's mistake), a recovery
/// gives two clusters, and fencing keeps them apart: the old leader's RPCs to the recovered
/// node's address are refused (they are for the old node id, from the old cluster), so
/// neither cluster's leader is disturbed by the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_recovery_beside_a_live_cluster_is_fenced_off() {
    guarded(GUARD, async {
        let mut nodes = start_cluster(3).await;
        set_through_failover(&nodes[0].db, b"k", b"v").await;
        let follower = nodes
            .iter()
            .position(|node| !node.db.is_leader())
            .expect("a follower");
        let (dir, addr) = stop(nodes.remove(follower)).await;
        let recovered = Db::start(Config {
            force_recover: true,
            ..restart_config(&dir, &addr, StartMode::Recover)
        })
        .await
        .expect("a forced recovery");
        eventually("the recovered node leads", || recovered.is_leader()).await;
        let leader_of_old = || nodes.iter().find(|node| node.db.is_leader());
        eventually("the old cluster has a leader", || leader_of_old().is_some()).await;
        let old_term = leader_of_old().expect("leader").db.stats().term;
        let new_term = recovered.stats().term;
        let watched = Instant::now();
        while watched.elapsed() < Duration::from_secs(3) {
            assert!(recovered.is_leader(), "the recovered node keeps leading");
            assert_eq!(recovered.stats().term, new_term, "undisturbed");
            if let Some(leader) = leader_of_old() {
                assert_eq!(
                    leader.db.stats().term,
                    old_term,
                    "the old cluster undisturbed"
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        set_through_failover(&recovered, b"new", b"cluster").await;
        set_through_failover(&nodes[0].db, b"old", b"cluster").await;
        recovered.close().await;
        for node in &nodes {
            node.db.close().await;
        }
    })
    .await;
}

/// A node that is its cluster's only voter (a recovered one started again with the same
/// flags) has nothing to recover: it starts as it is, same id, same data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovering_the_only_voter_changes_nothing() {
    guarded(GUARD, async {
        let node = start_node_with(StartMode::Bootstrap, &|_| {}).await;
        let revision = set_through_failover(&node.db, b"k", b"v").await;
        let id = node.db.id();
        let (dir, addr) = stop(node).await;
        let again = Db::start(restart_config(&dir, &addr, StartMode::Recover))
            .await
            .expect("starts");
        assert_eq!(again.id(), id);
        assert!(!dir.path().join("lmdb.before-recover-1").exists());
        again.wait_applied(revision).await.expect("its data");
        again.close().await;
    })
    .await;
}
