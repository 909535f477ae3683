//! The peer benchmark's results as a markdown table and as JSON: ratios dbadger/etcd and
//! multiples of the floor measured in the same run.

use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use super::embedded::EmbeddedMeasurement;
use super::harness::{Measurement, Operation};

/// The floor measured in the run.
pub struct Floor {
    /// 4 KiB append + fdatasync.
    pub append: Histogram<u64>,
    /// 4 KiB overwrite of preallocated space + fdatasync.
    pub overwrite: Histogram<u64>,
    /// One loopback gRPC unary call.
    pub grpc: Histogram<u64>,
}

impl Floor {
    /// The least one call of `operation` over gRPC can cost at the median, microseconds: a
    /// round trip, plus one fdatasync for a write.
    pub fn of(&self, operation: Operation) -> u64 {
        let round_trip = self.grpc.value_at_quantile(0.5);
        match operation {
            Operation::Put => round_trip + self.append.value_at_quantile(0.5),
            Operation::LinearizableGet | Operation::LocalGet => round_trip,
        }
    }
}

/// One scenario measured on both systems.
pub struct ScenarioResult {
    /// What the clients did.
    pub operation: Operation,
    /// How many clients.
    pub clients: usize,
    /// etcd's measurement.
    pub etcd: Measurement,
    /// dbadger's measurement.
    pub dbadger: Measurement,
}

/// Everything one run measured.
pub struct PeerReport {
    /// Seconds each scenario ran.
    pub seconds: u64,
    /// The floor.
    pub floor: Floor,
    /// The side-by-side scenarios, in the order they ran.
    pub scenarios: Vec<ScenarioResult>,
    /// Sum of the members' peak resident memory, etcd and dbadger, bytes.
    pub peak_rss: (u64, u64),
    /// Time from kill -9 of the leader to the next acknowledged write, etcd and dbadger.
    pub failover: Option<(Duration, Duration)>,
    /// The embedded cases.
    pub embedded: Vec<EmbeddedMeasurement>,
}

/// A latency in microseconds, written as µs below a millisecond and ms above.
fn latency(us: u64) -> String {
    if us < 1000 {
        format!("{us} µs")
    } else {
        format!("{:.1} ms", us as f64 / 1000.0)
    }
}

fn ratio(numerator: f64, denominator: f64) -> f64 {
    numerator / denominator.max(f64::EPSILON)
}

fn measurement_json(measurement: &Measurement, floor_us: u64) -> Value {
    json!({
        "operations": measurement.operations,
        "errors": measurement.errors,
        "first_error": measurement.first_error,
        "seconds": measurement.elapsed.as_secs_f64(),
        "ops_per_second": measurement.throughput(),
        "p50_us": measurement.quantile_us(0.5),
        "p99_us": measurement.quantile_us(0.99),
        "p999_us": measurement.quantile_us(0.999),
        "max_us": measurement.latencies.max(),
        "p50_over_floor": ratio(measurement.quantile_us(0.5) as f64, floor_us as f64),
        "server_cpu_us_per_op": measurement.cpu_per_operation_us(),
    })
}

fn quantiles_json(histogram: &Histogram<u64>) -> Value {
    json!({
        "p50_us": histogram.value_at_quantile(0.5),
        "p99_us": histogram.value_at_quantile(0.99),
        "p999_us": histogram.value_at_quantile(0.999),
    })
}

impl PeerReport {
    /// The results as JSON.
    pub fn json(&self) -> Value {
        let scenarios: Vec<Value> = self
            .scenarios
            .iter()
            .map(|row| {
                let floor = self.floor.of(row.operation);
                json!({
                    "scenario": row.operation.name(),
                    "clients": row.clients,
                    "floor_p50_us": floor,
                    "etcd": measurement_json(&row.etcd, floor),
                    "dbadger": measurement_json(&row.dbadger, floor),
                    "throughput_dbadger_over_etcd": ratio(row.dbadger.throughput(), row.etcd.throughput()),
                    "cpu_dbadger_over_etcd": ratio(row.dbadger.cpu_per_operation_us(), row.etcd.cpu_per_operation_us()),
                })
            })
            .collect();
        let embedded: Vec<Value> = self
            .embedded
            .iter()
            .map(|case| {
                json!({
                    "scenario": case.operation.name(),
                    "ops_per_second": case.throughput(),
                    "p50_us": case.latencies.value_at_quantile(0.5),
                    "p99_us": case.latencies.value_at_quantile(0.99),
                    "p999_us": case.latencies.value_at_quantile(0.999),
                })
            })
            .collect();
        json!({
            "seconds_per_scenario": self.seconds,
            "floor": {
                "append_fdatasync_4k": quantiles_json(&self.floor.append),
                "overwrite_fdatasync_4k": quantiles_json(&self.floor.overwrite),
                "grpc_unary_loopback": quantiles_json(&self.floor.grpc),
            },
            "scenarios": scenarios,
            "peak_rss_bytes": { "etcd": self.peak_rss.0, "dbadger": self.peak_rss.1 },
            "failover_seconds": self.failover.map(|(etcd, dbadger)| json!({
                "etcd": etcd.as_secs_f64(),
                "dbadger": dbadger.as_secs_f64(),
            })),
            "embedded": embedded,
        })
    }

    /// The results as markdown: the floor, the side-by-side table, memory, failover and the
    /// embedded cases.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let floor = &self.floor;
        let _ = writeln!(
            out,
            "Floor (p50 / p99): 4 KiB append + fdatasync {} / {}; 4 KiB overwrite + fdatasync {} / {}; loopback gRPC unary {} / {}.\n",
            latency(floor.append.value_at_quantile(0.5)),
            latency(floor.append.value_at_quantile(0.99)),
            latency(floor.overwrite.value_at_quantile(0.5)),
            latency(floor.overwrite.value_at_quantile(0.99)),
            latency(floor.grpc.value_at_quantile(0.5)),
            latency(floor.grpc.value_at_quantile(0.99)),
        );
        out.push_str(
            "| scenario | clients | etcd ops/s | dbadger ops/s | dbadger/etcd | p50 etcd / dbadger | p99 etcd / dbadger | p99.9 etcd / dbadger | p50 / floor etcd / dbadger | server CPU/op etcd / dbadger | errors etcd / dbadger |\n",
        );
        out.push_str("|---|---:|---:|---:|---:|---|---|---|---|---|---|\n");
        for row in &self.scenarios {
            let floor = self.floor.of(row.operation) as f64;
            let (etcd, dbadger) = (&row.etcd, &row.dbadger);
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.0} | {:.2}x | {} / {} | {} / {} | {} / {} | {:.1} / {:.1} | {:.0} / {:.0} µs | {} / {} |",
                row.operation.name(),
                row.clients,
                etcd.throughput(),
                dbadger.throughput(),
                ratio(dbadger.throughput(), etcd.throughput()),
                latency(etcd.quantile_us(0.5)),
                latency(dbadger.quantile_us(0.5)),
                latency(etcd.quantile_us(0.99)),
                latency(dbadger.quantile_us(0.99)),
                latency(etcd.quantile_us(0.999)),
                latency(dbadger.quantile_us(0.999)),
                ratio(etcd.quantile_us(0.5) as f64, floor),
                ratio(dbadger.quantile_us(0.5) as f64, floor),
                etcd.cpu_per_operation_us(),
                dbadger.cpu_per_operation_us(),
                etcd.errors,
                dbadger.errors,
            );
        }
        let (etcd_rss, dbadger_rss) = self.peak_rss;
        let _ = writeln!(
            out,
            "\nPeak RSS, sum of the 3 members: etcd {:.0} MiB, dbadger {:.0} MiB ({:.2}x).",
            etcd_rss as f64 / f64::from(1 << 20),
            dbadger_rss as f64 / f64::from(1 << 20),
            ratio(dbadger_rss as f64, etcd_rss as f64),
        );
        if let Some((etcd, dbadger)) = self.failover {
            let _ = writeln!(
                out,
                "\nFailover (kill -9 of the leader under 1-client writes, time to the next acknowledged write): etcd {:.2} s, dbadger {:.2} s ({:.2}x).",
                etcd.as_secs_f64(),
                dbadger.as_secs_f64(),
                ratio(dbadger.as_secs_f64(), etcd.as_secs_f64()),
            );
        }
        if !self.embedded.is_empty() {
            out.push_str("\nEmbedded (one node in-process, one client, one core):\n\n");
            out.push_str("| case | ops/s | p50 | p99 | p99.9 | p50 / append fdatasync p50 |\n");
            out.push_str("|---|---:|---|---|---|---:|\n");
            for case in &self.embedded {
                let _ = writeln!(
                    out,
                    "| {} | {:.0} | {} | {} | {} | {:.2} |",
                    case.operation.name(),
                    case.throughput(),
                    latency(case.latencies.value_at_quantile(0.5)),
                    latency(case.latencies.value_at_quantile(0.99)),
                    latency(case.latencies.value_at_quantile(0.999)),
                    ratio(
                        case.latencies.value_at_quantile(0.5) as f64,
                        floor.append.value_at_quantile(0.5) as f64
                    ),
                );
            }
        }
        out
    }
}
