//! Integration tests of dbadger over real sockets, real processes and real disks.
//!
//! The tests live in `tests/tests/`; this library holds what they share: starting in-process
//! clusters on loopback with LMDB in temporary directories.

use std::time::Duration;

use dbadger::{Config, Db, StartMode};
use tempfile::TempDir;

/// The deadline of every call in the tests.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(4);

/// One node of a test cluster and the directory it lives in.
#[derive(Debug)]
pub struct TestNode {
    /// The node.
    pub db: Db,
    /// Its data directory, deleted when the node is dropped.
    pub dir: TempDir,
}

/// Fast timers for tests on loopback: elections in a few hundred milliseconds.
pub fn test_config(dir: &TempDir, start: StartMode) -> Config {
    Config {
        bind: "127.0.0.1:0".to_owned(),
        data_dir: dir.path().to_path_buf(),
        start,
        heartbeat_timeout: Duration::from_millis(300),
        election_timeout: Duration::from_millis(150),
        leader_lease_timeout: Duration::from_millis(150),
        commit_timeout: Duration::from_millis(30),
        request_timeout: REQUEST_TIMEOUT,
        max_storage_bytes: 256 << 20,
        // Small enough that a test's few hundred writes compact the log.
        snapshot_threshold: 50,
        trailing_logs: 10,
        // Most tests stop nodes to restart them as members; tests/lifecycle.rs turns leaving
        // back on.
        leave_on_stop: false,
        ..Config::default()
    }
}

/// Starts a node with LMDB in a fresh temporary directory.
pub async fn start_node(start: StartMode) -> TestNode {
    start_node_with(start, &|_| {}).await
}

/// Starts a node with LMDB in a fresh temporary directory, after `tweak` adjusted its config.
pub async fn start_node_with(start: StartMode, tweak: &dyn Fn(&mut Config)) -> TestNode {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut config = test_config(&dir, start);
    tweak(&mut config);
    let db = Db::start(config).await.expect("node starts");
    TestNode { db, dir }
}

/// Stops a node and starts it again on the same data directory and address.
pub async fn restart(node: TestNode) -> TestNode {
    let TestNode { db, dir } = node;
    let addr = db.addr().to_owned();
    db.close().await;
    // The store closes when the last handle goes.
    drop(db);
    let config = Config {
        bind: addr,
        ..test_config(&dir, StartMode::Resume)
    };
    let db = Db::start(config).await.expect("node restarts");
    TestNode { db, dir }
}

/// Bootstraps one node and joins `size - 1` more, each through the previous node (so joins
/// are forwarded to the leader).
pub async fn start_cluster(size: usize) -> Vec<TestNode> {
    start_cluster_with(size, &|_| {}).await
}

/// [`start_cluster`] with every node's config adjusted by `tweak`.
pub async fn start_cluster_with(size: usize, tweak: &dyn Fn(&mut Config)) -> Vec<TestNode> {
    let mut nodes = vec![start_node_with(StartMode::Bootstrap, tweak).await];
    for _ in 1..size {
        let seed = nodes
            .last()
            .map(|node| node.db.addr().to_owned())
            .expect("a node");
        nodes.push(start_node_with(StartMode::Join(vec![seed]), tweak).await);
    }
    nodes
}

/// Writes `value` under `key` through `db`, sending the write again while the node answers
/// that it certainly did not apply it (no leader yet, the old leader unreachable) and the
/// failover window lasts; returns the revision. Any other error, or one of unknown outcome,
/// fails the test: only a write that did not apply may be sent again.
pub async fn set_through_failover(db: &Db, key: &[u8], value: &[u8]) -> u64 {
    let started = std::time::Instant::now();
    loop {
        match db.set(key, value).await {
            Ok(revision) => return revision,
            Err(error) if error.is_safe_to_retry() && started.elapsed() < FAILOVER_WINDOW => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("write after failover: {error:?}"),
        }
    }
}

/// How long a test lets a cluster take to elect a new leader.
pub const FAILOVER_WINDOW: Duration = Duration::from_secs(15);

/// The typed detail of a dbadger error status, read the standard way: a `google.rpc.Status` in
/// the status details holding a `dbadger.v1.ErrorDetail` packed in an `Any`.
pub use dbadger_grpc::status::error_detail;

/// Runs `test`, failing if it takes longer than `limit`, so a hang fails instead of stalling CI.
pub async fn guarded(limit: Duration, test: impl Future<Output = ()>) {
    tokio::time::timeout(limit, test)
        .await
        .expect("the test finishes within its guard");
}

/// Polls `check` every 20 ms until it holds, failing the test (naming `what`) after 15 s: for
/// conditions no event announces (a node's view of the membership, a background snapshot).
pub async fn eventually(what: &str, check: impl Fn() -> bool) {
    let started = std::time::Instant::now();
    while !check() {
        assert!(started.elapsed() < Duration::from_secs(15), "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A node of `nodes` that does not lead.
pub fn follower(nodes: &[TestNode]) -> &TestNode {
    nodes
        .iter()
        .find(|node| !node.db.is_leader())
        .expect("a follower")
}
