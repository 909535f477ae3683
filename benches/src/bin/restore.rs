//! Restore benchmark: a 3-node cluster on loopback with LMDB and fsync on, loaded with N keys
//! (default 100,000, 16-byte keys, 256-byte values), snapshotted and exported; then the whole
//! cluster is restored from the file, and the time until every node has applied the restore is
//! reported, with the file's size, the throughput and the time of each phase.
//!
//! Run: `cargo run --release -p dbadger-bench --bin restore [-- --keys N]`.

#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use dbadger::{Config, Db, StartMode};
use tempfile::TempDir;

const VALUE_BYTES: usize = 256;
const BATCH: usize = 500;

fn config(dir: &TempDir, start: StartMode) -> Config {
    Config {
        bind: "127.0.0.1:0".to_owned(),
        data_dir: dir.path().to_path_buf(),
        start,
        heartbeat_timeout: Duration::from_millis(300),
        election_timeout: Duration::from_millis(150),
        leader_lease_timeout: Duration::from_millis(150),
        request_timeout: Duration::from_secs(30),
        max_storage_bytes: 4 << 30,
        leave_on_stop: false,
        ..Config::default()
    }
}

fn keys_from_args() -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|arg| arg == "--keys")
        .and_then(|at| args.get(at + 1))
        .and_then(|value| value.parse().ok())
        .unwrap_or(100_000)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let keys = keys_from_args();
    let dirs: Vec<TempDir> = (0..3)
        .map(|_| tempfile::tempdir())
        .collect::<Result<_, _>>()?;
    let mut nodes = vec![Db::start(config(&dirs[0], StartMode::Bootstrap)).await?];
    for dir in &dirs[1..] {
        let seed = nodes[0].addr().to_owned();
        nodes.push(Db::start(config(dir, StartMode::Join(vec![seed]))).await?);
    }
    let db = nodes[0].clone();
    let value = vec![b'v'; VALUE_BYTES];
    let started = Instant::now();
    for first in (0..keys).step_by(BATCH) {
        let batch: Vec<Vec<u8>> = (first..(first + BATCH as u64).min(keys))
            .map(|n| format!("key-{n:012}").into_bytes())
            .collect();
        let values = vec![value.clone(); batch.len()];
        db.set_many(&batch, &values).await?;
    }
    let loaded = started.elapsed();
    let snapshot = db.snapshot().await?;
    let file = dirs[0].path().join("bench.snap");
    db.export_snapshot(&snapshot.id, &file)?;
    let size = std::fs::metadata(&file)?.len();
    db.delete_all().await?;

    let restoring = Instant::now();
    let restored = nodes[1].restore(&file).await?;
    let answered = restoring.elapsed();
    for node in &nodes {
        node.wait_applied(restored.revision).await?;
    }
    let everywhere = restoring.elapsed();
    println!(
        "restore of {} keys ({:.1} MiB file), 3 nodes, LMDB, fsync on",
        restored.keys,
        size as f64 / f64::from(1 << 20)
    );
    println!(
        "  load (set_many of {BATCH}): {:.2} s",
        loaded.as_secs_f64()
    );
    println!(
        "  restore answered: {:.2} s; applied on every node: {:.2} s ({:.1} MiB/s, {:.0} keys/s)",
        answered.as_secs_f64(),
        everywhere.as_secs_f64(),
        size as f64 / f64::from(1 << 20) / everywhere.as_secs_f64(),
        restored.keys as f64 / everywhere.as_secs_f64()
    );
    for node in &nodes {
        node.close().await;
    }
    Ok(())
}
