//! How the survivors of three real `dbadger node` processes behave when a peer dies.

mod common;

use std::time::Duration;

use common::{leader_index, result, run, three_nodes};

/// How long the leader is watched once a follower is dead.
const WINDOW: Duration = Duration::from_secs(10);

/// A follower killed with -9 costs the leader next to no CPU and a bounded number of log
/// lines: the transport retries the dead peer with a bounded, jittered exponential backoff and
/// logs its state change once, instead of retrying (and logging) in a tight loop. Before the
/// backoff the leader used 92% of a core and logged about 2,800 lines a second.
#[test]
fn a_dead_follower_costs_the_leader_next_to_nothing() {
    let root = tempfile::tempdir().expect("temporary directory");
    let mut nodes = three_nodes(root.path(), |_| Vec::new());
    let leader = leader_index(&nodes);
    let leader_addr = nodes[leader].addr.clone();
    nodes.remove((leader + 1) % 3).kill9();
    let watched = nodes
        .iter()
        .find(|node| node.addr == leader_addr)
        .expect("the leader is still running");
    // The first failures come at once; what must stay small is the steady state after them.
    let (code, _) = result(&run(&["put", "settle", "1", "--endpoints", &watched.addr]));
    assert_eq!(code, 0, "two of three nodes still take writes");
    let (cpu_before, lines_before) = (watched.cpu_time(), watched.log_lines());
    std::thread::sleep(WINDOW);
    let cpu = watched.cpu_time() - cpu_before;
    let lines = watched.log_lines() - lines_before;
    eprintln!("leader with a dead follower, {WINDOW:?}: {cpu:?} of CPU, {lines} log lines");
    assert!(
        cpu < WINDOW / 5,
        "the leader used {cpu:?} of CPU in {WINDOW:?} with a dead follower"
    );
    assert!(
        lines <= 10,
        "the leader logged {lines} lines in {WINDOW:?} with a dead follower"
    );
    let (code, _) = result(&run(&["put", "after", "2", "--endpoints", &watched.addr]));
    assert_eq!(code, 0, "writes still work");
}
