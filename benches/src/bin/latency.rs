//! Latency benchmark of whole clusters: 1-node and 3-node clusters on loopback with LMDB and
//! fsync on; writes and reads (Leader and Local) with 1, 16 and 64 concurrent clients, through
//! the embedded `Db` and over gRPC. Prints throughput and p50/p99/p99.9/max per case and
//! writes the results as JSON.
//!
//! Run: `cargo run --release -p dbadger-bench --bin latency [-- --seconds N --json PATH]`
//! (defaults: 3 seconds per case, `target/latency.json`). All nodes and clients share this
//! process and this machine's two cores, as a small deployment on one host would.

#![allow(clippy::print_stdout)]

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use dbadger::{Config, Db, ReadPreference, StartMode};
use dbadger_bench::report::{latency_histogram, record};
use dbadger_proto::v1;
use dbadger_proto::v1::kv_client::KvClient;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use tempfile::TempDir;
use tonic::transport::Channel;

const VALUE_BYTES: usize = 256;
const KEYS: u64 = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operation {
    Write,
    ReadLeader,
    ReadLocal,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::Write => "write",
            Operation::ReadLeader => "read_leader",
            Operation::ReadLocal => "read_local",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    Embedded,
    Grpc,
}

struct Outcome {
    nodes: usize,
    path: Path,
    operation: Operation,
    clients: usize,
    operations: u64,
    errors: u64,
    seconds: f64,
    latencies: Histogram<u64>,
}

struct Cluster {
    nodes: Vec<(Db, TempDir)>,
}

impl Cluster {
    async fn start(size: usize) -> Cluster {
        let mut nodes: Vec<(Db, TempDir)> = Vec::new();
        for index in 0..size {
            let dir = tempfile::tempdir_in("/var/tmp").expect("data directory");
            let start = match nodes.first() {
                None => StartMode::Bootstrap,
                Some((first, _)) => StartMode::Join(vec![first.addr().to_owned()]),
            };
            let config = Config {
                bind: "127.0.0.1:0".to_owned(),
                data_dir: dir.path().to_path_buf(),
                start,
                max_storage_bytes: 4 << 30,
                ..Config::default()
            };
            let db = Db::start(config).await.expect("node starts");
            if index == 0 {
                // Let the bootstrapped node become leader before others join.
                db.set(b"warmup", b"1").await.expect("first write");
            }
            nodes.push((db, dir));
        }
        Cluster { nodes }
    }

    fn leader(&self) -> &Db {
        self.nodes
            .iter()
            .map(|(db, _)| db)
            .find(|db| db.is_leader())
            .unwrap_or(&self.nodes[0].0)
    }

    async fn close(self) {
        for (db, _) in &self.nodes {
            db.close().await;
        }
    }
}

fn key(n: u64) -> Vec<u8> {
    format!("bench-{:06}", n % KEYS).into_bytes()
}

async fn embedded_op(db: &Db, operation: Operation, n: u64, value: &[u8]) -> bool {
    match operation {
        Operation::Write => db.set(key(n), value).await.is_ok(),
        Operation::ReadLeader => db.get(key(n), ReadPreference::Leader).await.is_ok(),
        Operation::ReadLocal => db.get(key(n), ReadPreference::Local).await.is_ok(),
    }
}

async fn grpc_op(
    client: &mut KvClient<Channel>,
    operation: Operation,
    n: u64,
    value: &[u8],
) -> bool {
    match operation {
        Operation::Write => client
            .set(v1::SetRequest {
                key: key(n),
                value: value.to_vec(),
            })
            .await
            .is_ok(),
        Operation::ReadLeader | Operation::ReadLocal => {
            let read_preference = if operation == Operation::ReadLeader {
                v1::ReadPreference::Leader
            } else {
                v1::ReadPreference::Local
            };
            client
                .get(v1::GetRequest {
                    key: key(n),
                    read_preference: read_preference as i32,
                })
                .await
                .is_ok()
        }
    }
}

async fn run_case(
    cluster: &Cluster,
    path: Path,
    operation: Operation,
    clients: usize,
    length: Duration,
) -> Outcome {
    let db = cluster.leader().clone();
    let addr = db.addr().to_owned();
    let start = Instant::now();
    let deadline = start + length;
    let mut tasks = Vec::new();
    for client_index in 0..clients {
        let db = db.clone();
        let addr = addr.clone();
        tasks.push(tokio::spawn(async move {
            let value = vec![0x42u8; VALUE_BYTES];
            let mut latencies = latency_histogram();
            let mut errors = 0u64;
            let mut grpc = match path {
                Path::Grpc => Some(
                    KvClient::connect(format!("http://{addr}"))
                        .await
                        .expect("connect"),
                ),
                Path::Embedded => None,
            };
            let mut n = client_index as u64 * 7919;
            while Instant::now() < deadline {
                let one = Instant::now();
                let ok = match grpc.as_mut() {
                    Some(client) => grpc_op(client, operation, n, &value).await,
                    None => embedded_op(&db, operation, n, &value).await,
                };
                record(&mut latencies, one.elapsed());
                errors += u64::from(!ok);
                n += 1;
            }
            (latencies, errors)
        }));
    }
    let mut latencies = latency_histogram();
    let mut errors = 0;
    for task in tasks {
        let (client_latencies, client_errors) = task.await.expect("client task");
        latencies
            .add(&client_latencies)
            .expect("same histogram bounds");
        errors += client_errors;
    }
    Outcome {
        nodes: cluster.nodes.len(),
        path,
        operation,
        clients,
        operations: latencies.len(),
        errors,
        seconds: start.elapsed().as_secs_f64(),
        latencies,
    }
}

fn json(outcomes: &[Outcome]) -> String {
    let mut out = String::from("[\n");
    for (i, o) in outcomes.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {{\"nodes\": {}, \"path\": \"{}\", \"operation\": \"{}\", \"clients\": {}, \"operations\": {}, \"errors\": {}, \"ops_per_second\": {:.1}, \"p50_us\": {}, \"p99_us\": {}, \"p999_us\": {}, \"max_us\": {}}}{}",
            o.nodes,
            if o.path == Path::Grpc {
                "grpc"
            } else {
                "embedded"
            },
            o.operation.name(),
            o.clients,
            o.operations,
            o.errors,
            o.operations as f64 / o.seconds,
            o.latencies.value_at_quantile(0.5),
            o.latencies.value_at_quantile(0.99),
            o.latencies.value_at_quantile(0.999),
            o.latencies.max(),
            if i + 1 < outcomes.len() { "," } else { "" }
        );
    }
    out.push(']');
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let seconds: u64 = flag("--seconds").and_then(|s| s.parse().ok()).unwrap_or(3);
    let json_path = flag("--json").unwrap_or_else(|| "target/latency.json".to_owned());
    let operations = [
        Operation::Write,
        Operation::ReadLeader,
        Operation::ReadLocal,
    ];
    let client_counts = [1usize, 16, 64];
    let paths = [Path::Embedded, Path::Grpc];
    let cases = 2 * paths.len() * operations.len() * client_counts.len();
    let progress = ProgressBar::new(cases as u64);
    progress
        .set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}").expect("template"));
    let mut outcomes = Vec::new();
    for size in [1usize, 3] {
        let cluster = Cluster::start(size).await;
        let leader = cluster.leader().clone();
        let value = vec![0x42u8; VALUE_BYTES];
        for n in 0..KEYS {
            leader.set(key(n), &value).await.expect("preload");
        }
        for path in paths {
            for operation in operations {
                for clients in client_counts {
                    progress.set_message(format!(
                        "{size} node(s), {path:?}, {}, {clients} clients",
                        operation.name()
                    ));
                    outcomes.push(
                        run_case(
                            &cluster,
                            path,
                            operation,
                            clients,
                            Duration::from_secs(seconds),
                        )
                        .await,
                    );
                    progress.inc(1);
                }
            }
        }
        cluster.close().await;
    }
    progress.finish_and_clear();
    println!(
        "| nodes | path | operation | clients | ops/s | p50 us | p99 us | p99.9 us | max us | errors |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for o in &outcomes {
        println!(
            "| {} | {:?} | {} | {} | {:.0} | {} | {} | {} | {} | {} |",
            o.nodes,
            o.path,
            o.operation.name(),
            o.clients,
            o.operations as f64 / o.seconds,
            o.latencies.value_at_quantile(0.5),
            o.latencies.value_at_quantile(0.99),
            o.latencies.value_at_quantile(0.999),
            o.latencies.max(),
            o.errors
        );
    }
    std::fs::write(&json_path, json(&outcomes)).expect("write JSON");
    println!("\nJSON: {json_path}");
}
