//! The peer benchmark: dbadger against etcd on this machine, side by side, in one run.
//!
//! Run: `scripts/bench-peer [-- OPTIONS]` (it installs Debian's `etcd-server` if missing and
//! builds the `dbadger` binary and this one in release). See `--help` and
//! `docs/benchmarks.md`.

#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use dbadger_bench::floor;
use dbadger_bench::peer::dbadger_nodes::DbadgerCluster;
use dbadger_bench::peer::etcd::EtcdCluster;
use dbadger_bench::peer::harness::{Operation, preload, run_clients};
use dbadger_bench::peer::process::{ServerProcess, wait_idle};
use dbadger_bench::peer::report::{Floor, PeerReport, ScenarioResult};
use dbadger_bench::peer::{System, embedded, failover};
use indicatif::{ProgressBar, ProgressStyle};

/// dbadger and etcd, three members each on loopback, measured through one client harness.
#[derive(Parser)]
struct Args {
    /// Seconds each scenario runs on each system.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Where the data directories go (both systems on this disk).
    #[arg(long, default_value = "/var/tmp")]
    dir: PathBuf,
    /// The dbadger binary (default: `dbadger` next to this one).
    #[arg(long)]
    dbadger: Option<PathBuf>,
    /// The etcd binary.
    #[arg(long, default_value = "/usr/bin/etcd")]
    etcd: PathBuf,
    /// Where to write the results as JSON.
    #[arg(long, default_value = "target/peer-bench.json")]
    json: PathBuf,
    /// Where to write the results as markdown.
    #[arg(long, default_value = "target/peer-bench.md")]
    markdown: PathBuf,
    /// Leave out the failover scenario.
    #[arg(long)]
    no_failover: bool,
    /// Leave out the embedded scenario.
    #[arg(long)]
    no_embedded: bool,
    /// Run only these side-by-side scenarios, as `operation:clients` (operation `put`,
    /// `get` for linearizable, `local` for serializable / Local), comma-separated; for example
    /// `put:1` while profiling the write path.
    #[arg(long, value_delimiter = ',', value_parser = parse_scenario)]
    scenarios: Vec<(Operation, usize)>,
}

fn parse_scenario(text: &str) -> Result<(Operation, usize), String> {
    let (operation, clients) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not operation:clients"))?;
    let operation = match operation {
        "put" => Operation::Put,
        "get" => Operation::LinearizableGet,
        "local" => Operation::LocalGet,
        other => return Err(format!("{other:?} is not put, get or local")),
    };
    let clients = clients
        .parse::<usize>()
        .ok()
        .filter(|&clients| clients > 0)
        .ok_or_else(|| format!("{clients:?} is not a number of clients"))?;
    Ok((operation, clients))
}

/// The side-by-side scenarios, in the order they run.
const SCENARIOS: [(Operation, usize); 7] = [
    (Operation::Put, 1),
    (Operation::Put, 16),
    (Operation::Put, 64),
    (Operation::LinearizableGet, 1),
    (Operation::LinearizableGet, 64),
    (Operation::LocalGet, 1),
    (Operation::LocalGet, 64),
];

/// How long each floor probe runs.
const FLOOR_PROBE: Duration = Duration::from_secs(2);
/// How long the clusters may take to go quiet before a scenario starts anyway.
const IDLE_LIMIT: Duration = Duration::from_secs(10);

struct Systems {
    etcd: EtcdCluster,
    dbadger: DbadgerCluster,
}

impl Systems {
    fn all_members(&self) -> Vec<&ServerProcess> {
        self.etcd
            .members
            .iter()
            .chain(&self.dbadger.members)
            .collect()
    }

    fn members(&self, system: System) -> Vec<&ServerProcess> {
        match system {
            System::Etcd => self.etcd.members.iter().collect(),
            System::Dbadger => self.dbadger.members.iter().collect(),
        }
    }

    async fn leader_endpoint(&self, system: System) -> Result<String, String> {
        let limit = Duration::from_secs(20);
        Ok(match system {
            System::Etcd => self.etcd.endpoints[self.etcd.leader(limit).await?].clone(),
            System::Dbadger => self.dbadger.endpoints[self.dbadger.leader(limit).await?].clone(),
        })
    }

    fn peak_rss(&self, system: System) -> u64 {
        self.members(system)
            .iter()
            .map(|member| member.peak_rss())
            .sum()
    }

    async fn failover(&mut self, system: System) -> Result<Duration, String> {
        let limit = Duration::from_secs(20);
        let leader = match system {
            System::Etcd => self.etcd.leader(limit).await?,
            System::Dbadger => self.dbadger.leader(limit).await?,
        };
        let (endpoints, members) = match system {
            System::Etcd => (&self.etcd.endpoints, &mut self.etcd.members),
            System::Dbadger => (&self.dbadger.endpoints, &mut self.dbadger.members),
        };
        failover::time_to_next_write(system, endpoints, members, leader).await
    }
}

async fn run(args: Args) -> Result<PeerReport, String> {
    let dbadger = match args.dbadger.clone() {
        Some(path) => path,
        None => std::env::current_exe()
            .map_err(|error| format!("cannot find this binary: {error}"))?
            .with_file_name("dbadger"),
    };
    for binary in [&dbadger, &args.etcd] {
        if !binary.is_file() {
            return Err(format!(
                "{} does not exist (run scripts/bench-peer)",
                binary.display()
            ));
        }
    }
    let root = tempfile::Builder::new()
        .prefix("dbadger-peer-bench-")
        .tempdir_in(&args.dir)
        .map_err(|error| {
            format!(
                "cannot create a directory in {}: {error}",
                args.dir.display()
            )
        })?;
    let length = Duration::from_secs(args.seconds);
    let chosen: Vec<(Operation, usize)> = if args.scenarios.is_empty() {
        SCENARIOS.to_vec()
    } else {
        args.scenarios.clone()
    };
    let steps =
        3 + 2 * chosen.len() + 2 * usize::from(!args.no_failover) + usize::from(!args.no_embedded);
    let progress = ProgressBar::new(steps as u64);
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {elapsed} {msg}")
            .map_err(|error| error.to_string())?,
    );

    progress.set_message("floor: fdatasync and loopback gRPC");
    let disk_error =
        |error: std::io::Error| format!("floor probe on {}: {error}", root.path().display());
    let floor = Floor {
        append: floor::append_sync(root.path(), FLOOR_PROBE).map_err(disk_error)?,
        overwrite: floor::overwrite_sync(root.path(), FLOOR_PROBE).map_err(disk_error)?,
        grpc: floor::grpc_unary(FLOOR_PROBE).await?,
    };
    progress.inc(1);

    progress.set_message("starting 3 etcd members and 3 dbadger nodes");
    let mut systems = Systems {
        etcd: EtcdCluster::start(&args.etcd, root.path(), 3).await?,
        dbadger: DbadgerCluster::start(&dbadger, root.path(), 3).await?,
    };
    progress.inc(1);
    progress.set_message("writing the key space on both");
    for system in [System::Etcd, System::Dbadger] {
        preload(system, &systems.leader_endpoint(system).await?).await?;
    }
    progress.inc(1);

    let mut scenarios = Vec::new();
    for (index, (operation, clients)) in chosen.into_iter().enumerate() {
        let mut measured = Vec::new();
        for system in System::order(index) {
            progress.set_message(format!(
                "{}: {} x{clients}",
                system.name(),
                operation.name()
            ));
            wait_idle(&systems.all_members(), IDLE_LIMIT);
            let endpoint = systems.leader_endpoint(system).await?;
            let measurement = run_clients(
                system,
                &endpoint,
                &systems.members(system),
                operation,
                clients,
                length,
            )
            .await?;
            measured.push((system, measurement));
            progress.inc(1);
        }
        let (mut etcd, mut dbadger) = (None, None);
        for (system, measurement) in measured {
            match system {
                System::Etcd => etcd = Some(measurement),
                System::Dbadger => dbadger = Some(measurement),
            }
        }
        if let (Some(etcd), Some(dbadger)) = (etcd, dbadger) {
            scenarios.push(ScenarioResult {
                operation,
                clients,
                etcd,
                dbadger,
            });
        }
    }
    let peak_rss = (
        systems.peak_rss(System::Etcd),
        systems.peak_rss(System::Dbadger),
    );

    let failover = if args.no_failover {
        None
    } else {
        let mut times = Vec::new();
        for system in [System::Etcd, System::Dbadger] {
            progress.set_message(format!("{}: failover", system.name()));
            wait_idle(&systems.all_members(), IDLE_LIMIT);
            times.push(systems.failover(system).await?);
            progress.inc(1);
        }
        Some((times[0], times[1]))
    };
    drop(systems);

    let embedded = if args.no_embedded {
        Vec::new()
    } else {
        progress.set_message("embedded");
        let cases = embedded::run(&root.path().join("embedded"), length)?;
        progress.inc(1);
        cases
    };
    progress.finish_and_clear();
    Ok(PeerReport {
        seconds: args.seconds,
        floor,
        scenarios,
        peak_rss,
        failover,
        embedded,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = Args::parse();
    let (json_path, markdown_path) = (args.json.clone(), args.markdown.clone());
    let report = match run(args).await {
        Ok(report) => report,
        Err(message) => {
            eprintln!("peer benchmark failed: {message}");
            return ExitCode::FAILURE;
        }
    };
    let markdown = report.markdown();
    println!("{markdown}");
    let json = serde_json::to_string_pretty(&report.json()).unwrap_or_default();
    for (path, text) in [(&json_path, json), (&markdown_path, markdown)] {
        if let Err(error) = std::fs::write(path, text) {
            eprintln!("cannot write {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
    }
    println!(
        "JSON: {}\nmarkdown: {}",
        json_path.display(),
        markdown_path.display()
    );
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_are_operation_and_clients() {
        assert_eq!(parse_scenario("put:1"), Ok((Operation::Put, 1)));
        assert_eq!(parse_scenario("local:64"), Ok((Operation::LocalGet, 64)));
        assert!(parse_scenario("put").is_err());
        assert!(parse_scenario("scan:1").is_err());
        assert!(parse_scenario("get:0").is_err());
    }
}
