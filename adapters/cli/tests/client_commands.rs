//! Three real `dbadger node --headless` processes on loopback, driven only through the client
//! commands: writes through a follower are read through another node, `--endpoints` fails over
//! past a dead endpoint, JSON output parses, every documented exit code comes out, and a
//! kill -9 of the leader during a stream of `put`s loses no put the client reported as
//! successful, and a kill -9 of the leader in the middle of a `snapshot restore` does not stop
//! the restore.

mod common;

use std::time::{Duration, Instant};

use common::{leader_index, result, run, run_with_stdin, three_nodes};

/// A put through a follower is read back through another node, as text and as JSON lines with
/// revisions; prefix, range, delete and compare-and-set behave as documented; each exit code
/// (0 success, 1 other, 2 usage, 3 not found, 4 compare failed, 5 unavailable) comes out where
/// the documentation says.
#[test]
fn the_client_commands_drive_a_three_node_cluster() {
    let root = tempfile::tempdir().expect("dir");
    let nodes = three_nodes(root.path(), |_| Vec::new());
    let leader = leader_index(&nodes);
    let follower = &nodes[(leader + 1) % 3];
    let other = &nodes[(leader + 2) % 3];

    let put = run(&["put", "greeting", "hello", "--endpoints", &follower.addr]);
    assert_eq!(result(&put), (0, "OK\n".to_owned()), "{put:?}");
    let get = run(&["get", "greeting", "--endpoints", &other.addr]);
    assert_eq!(result(&get), (0, "greeting\nhello\n".to_owned()));

    let json = run(&[
        "get",
        "greeting",
        "--endpoints",
        &other.addr,
        "--output",
        "json",
        "--read",
        "local",
    ]);
    let entry: serde_json::Value =
        serde_json::from_slice(&json.stdout).expect("one JSON object per line");
    assert_eq!(entry["value"], "hello");
    assert_eq!(entry["value_hex"], "68656c6c6f");
    assert!(
        entry["revision"]
            .as_u64()
            .is_some_and(|revision| revision > 0)
    );

    // Binary-safe: a value from stdin with a newline and a zero byte, read back in hex.
    let piped = run_with_stdin(&["put", "bin", "--endpoints", &follower.addr], b"a\n\x00");
    assert_eq!(piped.status.code(), Some(0), "{piped:?}");
    let hex = run(&["get", "62696e", "--hex", "--endpoints", &other.addr]);
    assert_eq!(result(&hex), (0, "62696e\n610a00\n".to_owned()));

    for (key, value) in [
        ("fruit/apple", "1"),
        ("fruit/banana", "2"),
        ("fruit/cherry", "3"),
    ] {
        let put = run(&["put", key, value, "--endpoints", &follower.addr]);
        assert_eq!(put.status.code(), Some(0), "{put:?}");
    }
    let prefix = run(&[
        "get",
        "fruit/",
        "--prefix",
        "--endpoints",
        &other.addr,
        "--output",
        "json",
    ]);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&prefix.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 3);
    let range = run(&[
        "get",
        "fruit/apple",
        "fruit/banana",
        "--endpoints",
        &other.addr,
    ]);
    assert_eq!(
        result(&range),
        (0, "fruit/apple\n1\nfruit/banana\n2\n".to_owned())
    );
    let limited = run(&[
        "get",
        "fruit/",
        "--prefix",
        "--limit",
        "1",
        "--endpoints",
        &other.addr,
    ]);
    assert_eq!(result(&limited), (0, "fruit/apple\n1\n".to_owned()));

    // Exit codes.
    let missing = run(&["get", "nothing", "--endpoints", &other.addr]);
    assert_eq!(missing.status.code(), Some(3), "not found: {missing:?}");
    let failed_cas = run(&[
        "cas",
        "greeting",
        "bye",
        "--expect-value",
        "wrong",
        "--endpoints",
        &follower.addr,
    ]);
    assert_eq!(result(&failed_cas), (4, "FAILED\nhello\n".to_owned()));
    let cas = run(&[
        "cas",
        "greeting",
        "bye",
        "--expect-value",
        "hello",
        "--endpoints",
        &follower.addr,
    ]);
    assert_eq!(result(&cas), (0, "OK\nbye\n".to_owned()));
    let absent = run(&[
        "cas",
        "new-key",
        "v",
        "--expect-absent",
        "--endpoints",
        &follower.addr,
    ]);
    assert_eq!(absent.status.code(), Some(0), "{absent:?}");
    let bad_hex = run(&["get", "xyz", "--hex", "--endpoints", &other.addr]);
    assert_eq!(bad_hex.status.code(), Some(2), "usage: {bad_hex:?}");
    let empty_key = run(&["put", "", "v", "--endpoints", &follower.addr]);
    assert_eq!(empty_key.status.code(), Some(2), "usage: {empty_key:?}");
    let unknown_flag = run(&["get", "k", "--no-such-flag"]);
    assert_eq!(unknown_flag.status.code(), Some(2));
    let dead = run(&[
        "get",
        "greeting",
        "--endpoints",
        "127.0.0.1:1",
        "--timeout",
        "2s",
    ]);
    assert_eq!(dead.status.code(), Some(5), "unavailable: {dead:?}");
    // A snapshot saved through the client is a whole, verified file the node also lists.
    let backup = root.path().join("backup.snap");
    let backup_arg = backup.to_str().expect("utf-8 path");
    let saved = run(&["snapshot", "save", backup_arg, "--endpoints", &other.addr]);
    assert_eq!(saved.status.code(), Some(0), "{saved:?}");
    let (_, pairs) = dbadger::snapshot_format::verify(std::io::BufReader::new(
        std::fs::File::open(&backup).expect("the saved file"),
    ))
    .expect("a valid snapshot");
    assert!(pairs >= 1, "the snapshot holds the data");
    let listed = run(&["snapshot", "list", "--endpoints", &other.addr]);
    let id = String::from_utf8_lossy(&saved.stdout)
        .split_whitespace()
        .nth(1)
        .expect("the saved id")
        .to_owned();
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains(&id),
        "{listed:?}"
    );
    // Restoring it after a change brings the saved state back on every node.
    let changed = run(&["put", "greeting", "changed", "--endpoints", &follower.addr]);
    assert_eq!(changed.status.code(), Some(0), "{changed:?}");
    let restore = run(&[
        "snapshot",
        "restore",
        backup_arg,
        "--endpoints",
        &other.addr,
    ]);
    assert_eq!(restore.status.code(), Some(0), "{restore:?}");
    for node in &nodes {
        let read = run(&["get", "greeting", "--endpoints", &node.addr]);
        assert_eq!(result(&read), (0, "greeting\nbye\n".to_owned()), "{read:?}");
    }
    let not_a_snapshot = root.path().join("not-a-snapshot");
    std::fs::write(&not_a_snapshot, b"hello").expect("write");
    let refused = run(&[
        "snapshot",
        "restore",
        not_a_snapshot.to_str().expect("utf-8 path"),
        "--endpoints",
        &other.addr,
    ]);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    // Leadership moves on request, to the voter whose log reaches furthest.
    let moved = run(&["members", "move-leader", "--endpoints", &other.addr]);
    assert_eq!(moved.status.code(), Some(0), "{moved:?}");

    // Failover: the first endpoint is dead, the second answers.
    let endpoints = format!("127.0.0.1:1,{}", other.addr);
    let failover = run(&["get", "greeting", "--endpoints", &endpoints]);
    assert_eq!(result(&failover), (0, "greeting\nbye\n".to_owned()));

    let deleted = run(&["del", "fruit/", "--prefix", "--endpoints", &follower.addr]);
    assert_eq!(result(&deleted), (0, "3\n".to_owned()));
    let members = run(&[
        "members",
        "list",
        "--endpoints",
        &other.addr,
        "--output",
        "json",
    ]);
    let voters = String::from_utf8_lossy(&members.stdout)
        .lines()
        .filter(|line| line.contains("\"voter\":true"))
        .count();
    assert_eq!(voters, 3, "{members:?}");
}

/// kill -9 of the leader while a client keeps putting through every endpoint: after the old
/// leader restarts, every put the client reported as successful is on every node.
#[test]
fn a_killed_leader_loses_no_acknowledged_put() {
    let root = tempfile::tempdir().expect("dir");
    let mut nodes = three_nodes(root.path(), |_| Vec::new());
    let leader = leader_index(&nodes);
    let endpoints = {
        // The leader last, so that puts mostly go through followers until it dies.
        let mut order: Vec<&str> = nodes.iter().map(|node| node.addr.as_str()).collect();
        order.rotate_left((leader + 1) % 3);
        order.join(",")
    };
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    let put = |i: usize| {
        run(&[
            "put",
            &format!("stream-{i}"),
            &format!("v{i}"),
            "--endpoints",
            &endpoints,
            "--timeout",
            "3s",
        ])
    };
    for i in 0..20 {
        if put(i).status.success() {
            acknowledged.push(i);
        }
    }
    let old_leader = nodes.remove(leader);
    let restarted = old_leader.kill9_and_restart(|| {
        for i in 20..60 {
            if put(i).status.success() {
                acknowledged.push(i);
            } else {
                refused += 1;
            }
        }
    });
    nodes.push(restarted);
    assert!(
        acknowledged.len() >= 30,
        "too few puts succeeded: {acknowledged:?}"
    );
    for node in &nodes {
        for i in &acknowledged {
            let key = format!("stream-{i}");
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let got = run(&["get", &key, "--read", "local", "--endpoints", &node.addr]);
                if result(&got) == (0, format!("{key}\nv{i}\n")) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{key} acknowledged but missing on {}: {got:?}",
                    node.addr
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    eprintln!(
        "{} puts acknowledged, {refused} refused during the failover",
        acknowledged.len()
    );
}

/// The applied index node `addr` reports (`dbadger status --output json`).
fn applied_index(addr: &str) -> u64 {
    let status = run(&["status", "--endpoints", addr, "--output", "json"]);
    let line = String::from_utf8_lossy(&status.stdout).into_owned();
    let status: serde_json::Value = serde_json::from_str(line.trim()).expect("status JSON");
    status["applied_index"].as_u64().expect("applied_index")
}

/// kill -9 of the leader in the middle of `dbadger snapshot restore` sent to a follower: the
/// restore completes through the new leader (its pieces whose answers were lost are sent
/// again and count once), and once the killed node is back every node holds the snapshot's
/// pairs and nothing else.
#[test]
fn a_restore_survives_kill_9_of_the_leader() {
    use dbadger_core::raft_types::SnapshotMeta;
    use dbadger_core::snapshot_format::SnapshotWriter;

    let root = tempfile::tempdir().expect("dir");
    let mut nodes = three_nodes(root.path(), |_| Vec::new());
    let leader = leader_index(&nodes);
    let via = nodes[(leader + 1) % 3].addr.clone();
    let put = run(&["put", "before", "the restore", "--endpoints", &via]);
    assert_eq!(put.status.code(), Some(0), "{put:?}");
    // 20,000 pairs of 1 KiB: the restore sends it in a dozen pieces of 1.5 MiB.
    const PAIRS: usize = 20_000;
    let file = root.path().join("big.snap");
    let out = std::io::BufWriter::new(std::fs::File::create(&file).expect("snapshot file"));
    let mut writer = SnapshotWriter::new(out, &SnapshotMeta::default()).expect("writer");
    for n in 0..PAIRS {
        let key = format!("key-{n:06}");
        writer
            .record(key.as_bytes(), &[b'v'; 1024], 1)
            .expect("record");
    }
    writer.finish().expect("finish the snapshot");

    let before = applied_index(&via);
    let restoring = {
        let (file, via) = (file.to_string_lossy().into_owned(), via.clone());
        std::thread::spawn(move || run(&["snapshot", "restore", &file, "--endpoints", &via]))
    };
    // Kill the leader once the restore has begun and staged a piece or two.
    let started = Instant::now();
    let killed_at = loop {
        let applied = applied_index(&via);
        if applied >= before + 3 {
            break applied;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the restore did not begin"
        );
    };
    let old_leader = nodes.remove(leader);
    let mut restored = None;
    let back = old_leader.kill9_and_restart(|| {
        restored = Some(restoring.join().expect("the restore command"));
    });
    nodes.push(back);
    let restored = restored.expect("the restore ran");
    let (code, text) = result(&restored);
    assert_eq!(
        code, 0,
        "the restore completes under the new leader: {restored:?}"
    );
    let revision: u64 = text
        .trim()
        .rsplit_once("at revision ")
        .and_then(|(_, revision)| revision.parse().ok())
        .unwrap_or_else(|| panic!("a revision in {text:?}"));
    assert!(
        revision > killed_at,
        "the restore committed (at {revision}) after the kill (applied {killed_at})"
    );
    assert!(text.contains(&format!("restored {PAIRS} keys")), "{text}");
    for node in &nodes {
        let deadline = Instant::now() + Duration::from_secs(20);
        while applied_index(&node.addr) < revision {
            if Instant::now() >= deadline {
                let status = run(&["status", "--endpoints", &node.addr, "--output", "json"]);
                let log: Vec<String> = node.logged("").into_iter().rev().take(30).collect();
                panic!(
                    "{} did not catch up to {revision}: {}\n{}",
                    node.addr,
                    String::from_utf8_lossy(&status.stdout),
                    log.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        for n in [0, PAIRS / 2, PAIRS - 1] {
            let key = format!("key-{n:06}");
            let got = run(&["get", &key, "--read", "local", "--endpoints", &node.addr]);
            assert_eq!(
                got.status.code(),
                Some(0),
                "{key} on {}: {got:?}",
                node.addr
            );
        }
        let gone = run(&[
            "get",
            "before",
            "--read",
            "local",
            "--endpoints",
            &node.addr,
        ]);
        assert_eq!(
            gone.status.code(),
            Some(3),
            "the restore removed it: {gone:?}"
        );
    }
}
