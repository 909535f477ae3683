//! The embedded scenario: dbadger inside the benchmark's own process, no gRPC. One node on
//! LMDB with fsync on, driven from a single-threaded runtime (one core) by one client.

use std::path::Path;
use std::time::{Duration, Instant};

use dbadger::{Config, Db, ReadPreference, StartMode};
use hdrhistogram::Histogram;

use super::harness::{KEY_SPACE, Operation, VALUE_BYTES, key};
use crate::report::{latency_histogram, record};

/// One embedded case's result.
pub struct EmbeddedMeasurement {
    /// What the client did.
    pub operation: Operation,
    /// Calls that succeeded.
    pub operations: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Latency of every call, microseconds.
    pub latencies: Histogram<u64>,
}

impl EmbeddedMeasurement {
    /// Successful calls per second.
    pub fn throughput(&self) -> f64 {
        self.operations as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

async fn one_call(db: &Db, operation: Operation, n: u64, value: &[u8]) -> Result<(), String> {
    let outcome = match operation {
        Operation::Put => db.set(key(n), value).await.map(drop),
        Operation::LinearizableGet => db.get(key(n), ReadPreference::Leader).await.map(drop),
        Operation::LocalGet => db.get(key(n), ReadPreference::Local).await.map(drop),
    };
    outcome.map_err(|error| error.to_string())
}

async fn measure(
    db: &Db,
    operation: Operation,
    length: Duration,
) -> Result<EmbeddedMeasurement, String> {
    let value = vec![0x42u8; VALUE_BYTES];
    let mut latencies = latency_histogram();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < length {
        let one = Instant::now();
        one_call(db, operation, n, &value).await?;
        record(&mut latencies, one.elapsed());
        n += 1;
    }
    Ok(EmbeddedMeasurement {
        operation,
        operations: latencies.len(),
        elapsed: start.elapsed(),
        latencies,
    })
}

async fn run_all(dir: &Path, length: Duration) -> Result<Vec<EmbeddedMeasurement>, String> {
    let config = Config {
        bind: "127.0.0.1:0".to_owned(),
        data_dir: dir.to_path_buf(),
        start: StartMode::Bootstrap,
        ..Config::default()
    };
    let db = Db::start(config)
        .await
        .map_err(|error| format!("the embedded node did not start: {error}"))?;
    let value = vec![0x42u8; VALUE_BYTES];
    let mut results = Vec::new();
    let outcome = async {
        for n in 0..KEY_SPACE {
            one_call(&db, Operation::Put, n, &value).await?;
        }
        for operation in [
            Operation::Put,
            Operation::LinearizableGet,
            Operation::LocalGet,
        ] {
            results.push(measure(&db, operation, length).await?);
        }
        Ok::<(), String>(())
    }
    .await;
    db.close().await;
    outcome.map(|()| results)
}

/// Runs the embedded cases (put, Leader get, Local get; one client each) on a new
/// single-threaded runtime in a thread of its own, with the node's data in `dir`.
pub fn run(dir: &Path, length: Duration) -> Result<Vec<EmbeddedMeasurement>, String> {
    let dir = dir.to_path_buf();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| format!("cannot start a runtime: {error}"))?;
        runtime.block_on(run_all(&dir, length))
    })
    .join()
    .map_err(|_| "the embedded scenario panicked".to_owned())?
}
