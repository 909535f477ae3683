//! The Raft transport over real gRPC on loopback: nodes with in-memory stores form a cluster,
//! replicate writes, and a node that joins after the log was purged catches up through a
//! snapshot streamed in chunks.

use std::collections::BTreeMap;
use std::time::Duration;

use dbadger_core::raft_types::Node;
use dbadger_core::{Command, Response};
use openraft::async_runtime::watch::WatchReceiver;

mod common;

use common::{TestNode, start_node};

async fn wait_applied(node: &TestNode, index: u64) {
    node.raft
        .wait(Some(Duration::from_secs(20)))
        .applied_index_at_least(Some(index), "replicated")
        .await
        .expect("applied in time");
}

/// Starts three nodes, makes node 1 the leader of all three, and waits until every node has
/// applied the leader's blank entry (index 1): the leader then holds a lease and takes writes.
async fn form_cluster() -> Vec<TestNode> {
    let mut nodes = Vec::new();
    for id in 1..=3 {
        nodes.push(start_node(id).await);
    }
    let members: BTreeMap<u64, Node> = (1..=3)
        .zip(&nodes)
        .map(|(id, node)| {
            let addr = node.addr.clone();
            (id, Node { addr })
        })
        .collect();
    nodes[0].raft.initialize(members).await.expect("initialize");
    nodes[0]
        .raft
        .wait(Some(Duration::from_secs(20)))
        .current_leader(1, "node 1 leads")
        .await
        .expect("leader elected");
    for node in &nodes {
        wait_applied(node, 1).await;
    }
    nodes
}

/// Three nodes elect, replicate 50 writes to every state machine; a fourth node joining after
/// the leader purged its log receives the state as a streamed snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_replicates_and_streams_snapshots_over_grpc() {
    let nodes = form_cluster().await;

    let mut last = 0;
    for i in 0..50u64 {
        let command = Command::Set {
            key: format!("key-{i:03}").into_bytes(),
            value: vec![i as u8; 100],
        };
        let written = nodes[0]
            .raft
            .client_write(command)
            .await
            .expect("write accepted");
        assert!(matches!(written.response(), Response::Written { .. }));
        last = written.log_id().index;
    }
    for node in &nodes {
        wait_applied(node, last).await;
        assert_eq!(
            node.machine.dump(),
            nodes[0].machine.dump(),
            "replicas agree"
        );
    }
    assert_eq!(nodes[0].machine.dump().len(), 50);

    nodes[0].raft.trigger().snapshot().await.expect("snapshot");
    // Copy out of the metrics before awaiting: a held borrow blocks the Raft core.
    let applied = nodes[0]
        .raft
        .metrics()
        .borrow_watched()
        .last_applied
        .expect("applied");
    nodes[0]
        .raft
        .wait(Some(Duration::from_secs(20)))
        .snapshot(applied, "snapshot built")
        .await
        .expect("snapshot in time");
    let purged = nodes[0].raft.metrics().borrow_watched().purged;
    assert!(purged.is_some(), "log purged after the snapshot");

    let late = start_node(4).await;
    nodes[0]
        .raft
        .add_learner(
            4,
            Node {
                addr: late.addr.clone(),
            },
            true,
        )
        .await
        .expect("add learner");
    wait_applied(&late, last).await;
    assert_eq!(
        late.machine.dump(),
        nodes[0].machine.dump(),
        "snapshot reproduced the state"
    );
    let snapshot = late.raft.metrics().borrow_watched().snapshot;
    assert!(snapshot.is_some(), "the late node installed a snapshot");
}

/// A follower's server stops gracefully while the leader holds an append stream open to it:
/// the stream ends when the stop fires, so the shutdown does not wait for the leader, and the
/// other two nodes go on committing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_is_not_held_open_by_the_leaders_append_stream() {
    let mut nodes = form_cluster().await;
    let write = |i: u64| Command::Set {
        key: format!("key-{i}").into_bytes(),
        value: b"v".to_vec(),
    };
    let first = nodes[0]
        .raft
        .client_write(write(0))
        .await
        .expect("write accepted");
    for node in &nodes {
        wait_applied(node, first.log_id().index).await;
    }

    let follower = nodes.remove(1);
    follower.stop.send(()).expect("server running");
    tokio::time::timeout(Duration::from_secs(20), follower.server)
        .await
        .expect("the server stops although the leader streams to it")
        .expect("server task");
    follower.raft.shutdown().await.expect("raft stops");

    let second = nodes[0]
        .raft
        .client_write(write(1))
        .await
        .expect("two of three still commit");
    wait_applied(&nodes[1], second.log_id().index).await;
}
