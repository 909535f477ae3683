//! Three real `dbadger node` processes, each in its own network namespace, under partitions:
//! once a partition heals, the cut-off node serves its clients again within a stated bound
//! (connections that stalled during the partition are replaced, not waited on), and no
//! connection is closed by h2's guard against streams reset before they were accepted. Needs
//! root for the namespaces (see `common::netlab`).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::netlab::NetLab;
use common::{Node, form_three, leader_index, result, run};

/// How long each partition lasts: long enough for every call to the cut-off node to time out
/// and for its connections to go stale.
const PARTITION: Duration = Duration::from_secs(9);

/// How soon after a heal the cut-off node must serve a write again: the longest retry
/// backoff (1 s), a heartbeat timeout for the stalled connection to be given up (1 s), and a
/// round of replication to catch it up, with room for a loaded machine.
const RECOVERY_BOUND: Duration = Duration::from_secs(4);

/// How many partitions of a follower the test makes.
const PARTITIONS: usize = 3;

#[test]
fn a_partitioned_follower_serves_again_soon_after_the_heal() {
    let lab = NetLab::new(3);
    let root = tempfile::tempdir().expect("temporary directory");
    let nodes = form_three(root.path(), |member, dir, flags| {
        let bind = format!("{}:7400", lab.address(member));
        Node::start_in(&lab.netns(member), dir, &bind, flags)
    });
    let mut recoveries = Vec::new();
    for partition in 0..PARTITIONS {
        let leader = leader_index(&nodes);
        let follower = (leader + 1) % 3;
        let others = (0..3)
            .filter(|&i| i != follower)
            .map(|i| nodes[i].addr.clone())
            .collect::<Vec<_>>()
            .join(",");
        // Writes keep flowing through the majority during the partition, so the cut-off node
        // has appends in flight (and falls behind) when it is cut off.
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let writer = {
            let (stop, written, others) = (Arc::clone(&stop), Arc::clone(&written), others.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let n = written.load(Ordering::SeqCst);
                    let key = format!("p{partition}-{n}");
                    let output =
                        run(&["put", &key, "x", "--endpoints", &others, "--timeout", "5s"]);
                    if result(&output).0 == 0 {
                        written.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        };
        lab.isolate(follower);
        std::thread::sleep(PARTITION);
        lab.heal(follower);
        let healed = Instant::now();
        let key = format!("via-follower-{partition}");
        loop {
            let output = run(&[
                "put",
                &key,
                "1",
                "--endpoints",
                &nodes[follower].addr,
                "--timeout",
                "1s",
            ]);
            if result(&output).0 == 0 {
                break;
            }
            assert!(
                healed.elapsed() < Duration::from_secs(30),
                "the healed node never served a write"
            );
        }
        recoveries.push(healed.elapsed());
        stop.store(true, Ordering::SeqCst);
        writer.join().expect("writer");
        assert!(
            written.load(Ordering::SeqCst) > 0,
            "the majority took no write during the partition"
        );
    }
    eprintln!(
        "write through a healed follower, {PARTITIONS} partitions of {PARTITION:?}: {recoveries:?}"
    );
    for node in &nodes {
        let resets = node.logged("reset pending-accept streams");
        assert!(
            resets.is_empty(),
            "h2's reset guard closed connections of {}: {resets:?}",
            node.addr
        );
    }
    let slowest = recoveries.iter().max().copied().unwrap_or_default();
    assert!(
        slowest <= RECOVERY_BOUND,
        "a healed follower took {slowest:?} to serve a write (bound {RECOVERY_BOUND:?}): {recoveries:?}"
    );
}
