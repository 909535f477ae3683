//! The one client harness both systems are measured through: closed-loop clients, one HTTP/2
//! connection per [`CLIENTS_PER_CONNECTION`] clients, all aimed at one member, each recording
//! the latency of every call.

use std::time::{Duration, Instant};

use dbadger_proto::v1;
use dbadger_proto::v1::kv_client::KvClient;
use hdrhistogram::Histogram;
use tonic::transport::Channel;

use super::etcd::EtcdClient;
use super::process::{ServerProcess, total_cpu};
use super::{System, connect};
use crate::report::{latency_histogram, record};

/// How many clients share one connection (etcd's clients and dbadger's multiplex the same
/// way; more connections would measure the kernel rather than the server).
pub const CLIENTS_PER_CONNECTION: usize = 16;
/// Keys are 16 bytes: `key-` and twelve digits.
pub const KEY_SPACE: u64 = 1000;
/// Values are 256 bytes.
pub const VALUE_BYTES: usize = 256;

/// What a scenario's clients do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Write one key.
    Put,
    /// Read one key through the leader: etcd's default Range, dbadger's `Leader` preference.
    LinearizableGet,
    /// Read one key from the member's own state: etcd's serializable Range, dbadger's
    /// `Local` preference.
    LocalGet,
}

impl Operation {
    /// The scenario's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Put => "put",
            Operation::LinearizableGet => "linearizable get",
            Operation::LocalGet => "serializable / Local get",
        }
    }
}

/// The `n`th key of the key space, 16 bytes.
pub fn key(n: u64) -> Vec<u8> {
    format!("key-{:012}", n % KEY_SPACE).into_bytes()
}

/// A client of either system on one connection.
#[derive(Clone)]
pub enum KvTarget {
    /// etcd's v3 KV service.
    Etcd(EtcdClient),
    /// dbadger's Kv service.
    Dbadger(KvClient<Channel>),
}

impl KvTarget {
    /// A client of `system` on `channel`.
    pub fn new(system: System, channel: Channel) -> KvTarget {
        match system {
            System::Etcd => KvTarget::Etcd(EtcdClient::new(channel)),
            System::Dbadger => KvTarget::Dbadger(KvClient::new(channel)),
        }
    }

    /// One call; an error is the server's message.
    pub async fn call(
        &mut self,
        operation: Operation,
        key: Vec<u8>,
        value: &[u8],
    ) -> Result<(), String> {
        let failed = |status: tonic::Status| status.message().to_owned();
        match (self, operation) {
            (KvTarget::Etcd(client), Operation::Put) => {
                client.put(key, value.to_vec()).await.map_err(failed)
            }
            (KvTarget::Etcd(client), read) => {
                let serializable = read == Operation::LocalGet;
                match client.get(key, serializable).await.map_err(failed)? {
                    Some(_) => Ok(()),
                    None => Err("the key is missing".to_owned()),
                }
            }
            (KvTarget::Dbadger(client), Operation::Put) => client
                .set(v1::SetRequest {
                    key,
                    value: value.to_vec(),
                })
                .await
                .map(drop)
                .map_err(failed),
            (KvTarget::Dbadger(client), read) => {
                let read_preference = if read == Operation::LocalGet {
                    v1::ReadPreference::Local
                } else {
                    v1::ReadPreference::Leader
                };
                client
                    .get(v1::GetRequest {
                        key,
                        read_preference: read_preference as i32,
                    })
                    .await
                    .map(drop)
                    .map_err(failed)
            }
        }
    }
}

/// What one scenario on one system measured.
pub struct Measurement {
    /// Calls that succeeded.
    pub operations: u64,
    /// Calls that failed (each also counted in no latency).
    pub errors: u64,
    /// The first error seen, if any.
    pub first_error: Option<String>,
    /// Wall time of the scenario.
    pub elapsed: Duration,
    /// Latency of every successful call, microseconds.
    pub latencies: Histogram<u64>,
    /// CPU time the system's server processes used during the scenario.
    pub server_cpu: Duration,
}

impl Measurement {
    /// Successful calls per second.
    pub fn throughput(&self) -> f64 {
        self.operations as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// Server CPU per successful call, microseconds.
    pub fn cpu_per_operation_us(&self) -> f64 {
        self.server_cpu.as_secs_f64() * 1e6 / self.operations.max(1) as f64
    }

    /// The latency at quantile `q`, microseconds.
    pub fn quantile_us(&self, q: f64) -> u64 {
        self.latencies.value_at_quantile(q)
    }
}

/// Runs `clients` closed-loop clients of `operation` against `endpoint` for `length`, while
/// measuring the CPU time of `servers`.
pub async fn run_clients(
    system: System,
    endpoint: &str,
    servers: &[&ServerProcess],
    operation: Operation,
    clients: usize,
    length: Duration,
) -> Result<Measurement, String> {
    let mut connections = Vec::new();
    for _ in 0..clients.div_ceil(CLIENTS_PER_CONNECTION) {
        connections.push(KvTarget::new(system, connect(endpoint).await?));
    }
    let cpu_before = total_cpu(servers);
    let start = Instant::now();
    let deadline = start + length;
    let mut tasks = Vec::new();
    for index in 0..clients {
        let mut target = connections[index / CLIENTS_PER_CONNECTION].clone();
        tasks.push(tokio::spawn(async move {
            let value = vec![0x42u8; VALUE_BYTES];
            let mut latencies = latency_histogram();
            let (mut errors, mut first_error) = (0u64, None);
            // Spread the clients over the key space.
            let mut n = index as u64 * 7919;
            while Instant::now() < deadline {
                let one = Instant::now();
                match target.call(operation, key(n), &value).await {
                    Ok(()) => record(&mut latencies, one.elapsed()),
                    Err(error) => {
                        errors += 1;
                        first_error.get_or_insert(error);
                    }
                }
                n += 1;
            }
            (latencies, errors, first_error)
        }));
    }
    let mut measurement = Measurement {
        operations: 0,
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
        latencies: latency_histogram(),
        server_cpu: Duration::ZERO,
    };
    for task in tasks {
        let (latencies, errors, first_error) = task
            .await
            .map_err(|_| "a client task panicked".to_owned())?;
        measurement
            .latencies
            .add(&latencies)
            .map_err(|_| "histograms of different bounds".to_owned())?;
        measurement.errors += errors;
        if measurement.first_error.is_none() {
            measurement.first_error = first_error;
        }
    }
    measurement.elapsed = start.elapsed();
    measurement.server_cpu = total_cpu(servers).saturating_sub(cpu_before);
    measurement.operations = measurement.latencies.len();
    Ok(measurement)
}

/// Writes every key of the key space once through `endpoint` (64 clients), so that reads
/// find them.
pub async fn preload(system: System, endpoint: &str) -> Result<(), String> {
    let target = KvTarget::new(system, connect(endpoint).await?);
    let mut tasks = Vec::new();
    for first in 0..64u64 {
        let mut target = target.clone();
        tasks.push(tokio::spawn(async move {
            let value = vec![0x42u8; VALUE_BYTES];
            for n in (first..KEY_SPACE).step_by(64) {
                target.call(Operation::Put, key(n), &value).await?;
            }
            Ok::<(), String>(())
        }));
    }
    for task in tasks {
        task.await
            .map_err(|_| "a preload task panicked".to_owned())?
            .map_err(|error| format!("preload of {system:?} failed: {error}"))?;
    }
    Ok(())
}
