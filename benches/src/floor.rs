//! This machine's floor, measured in the same run as the benchmark it explains: what one
//! durable write costs the disk (a 4 KiB append or an overwrite of preallocated space, each
//! followed by fdatasync) and what one loopback gRPC round trip costs.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tonic::transport::Channel;
use tonic::transport::server::TcpIncoming;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::report::{latency_histogram, record};

/// The size of one probe write: one page, what a small durable commit flushes at least.
const BLOCK: usize = 4096;

/// A new, empty probe file `name` in `dir`.
fn probe_file(dir: &Path, name: &str) -> std::io::Result<(PathBuf, File)> {
    let path = dir.join(name);
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)?;
    Ok((path, file))
}

/// Appends 4 KiB blocks to a new file in `dir`, each followed by fdatasync, for `length`.
pub fn append_sync(dir: &Path, length: Duration) -> std::io::Result<Histogram<u64>> {
    let (path, mut file) = probe_file(dir, "floor-append.probe")?;
    let block = vec![0x5A; BLOCK];
    let mut latencies = latency_histogram();
    let start = Instant::now();
    while start.elapsed() < length {
        let one = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        record(&mut latencies, one.elapsed());
    }
    drop(file);
    std::fs::remove_file(path)?;
    Ok(latencies)
}

/// Overwrites 4 KiB blocks of a preallocated, already synced file in `dir` in order, each
/// followed by fdatasync, for `length`: the pattern of a log that writes into preallocated
/// segments (the file's size, and so its metadata, never changes).
pub fn overwrite_sync(dir: &Path, length: Duration) -> std::io::Result<Histogram<u64>> {
    const BLOCKS: u64 = 16 * 1024;
    let (path, mut file) = probe_file(dir, "floor-overwrite.probe")?;
    let block = vec![0x5A; BLOCK];
    for _ in 0..BLOCKS {
        file.write_all(&block)?;
    }
    file.sync_all()?;
    let mut latencies = latency_histogram();
    let start = Instant::now();
    let mut next = 0u64;
    while start.elapsed() < length {
        let one = Instant::now();
        file.seek(SeekFrom::Start((next % BLOCKS) * BLOCK as u64))?;
        file.write_all(&block)?;
        file.sync_data()?;
        record(&mut latencies, one.elapsed());
        next += 1;
    }
    drop(file);
    std::fs::remove_file(path)?;
    Ok(latencies)
}

/// One gRPC client calling a health-check service in this process over loopback, one call at
/// a time, for `length`: the least any unary RPC costs on this machine.
pub async fn grpc_unary(length: Duration) -> Result<Histogram<u64>, String> {
    let incoming = TcpIncoming::bind("127.0.0.1:0".parse().map_err(|_| "loopback address")?)
        .map_err(|error| format!("cannot bind the probe server: {error}"))?
        .with_nodelay(Some(true));
    let addr = incoming
        .local_addr()
        .map_err(|error| format!("probe server address: {error}"))?;
    let (_reporter, health) = tonic_health::server::health_reporter();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(health)
            .serve_with_incoming(incoming),
    );
    let channel = Channel::from_shared(format!("http://{addr}"))
        .map_err(|error| error.to_string())?
        .connect()
        .await
        .map_err(|error| format!("cannot reach the probe server: {error}"))?;
    let mut client = HealthClient::new(channel);
    let mut latencies = latency_histogram();
    let start = Instant::now();
    while start.elapsed() < length {
        let one = Instant::now();
        client
            .check(HealthCheckRequest::default())
            .await
            .map_err(|status| format!("probe call failed: {}", status.message()))?;
        record(&mut latencies, one.elapsed());
    }
    server.abort();
    Ok(latencies)
}
