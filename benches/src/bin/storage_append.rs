//! Log-append benchmark (the on-disk log store: segment files): throughput and flushes per
//! entry for batches of 1, 16 and 256 entries of 256 bytes, sequential and pipelined (several
//! appends in flight, which the writer groups into one flush), single-append latency
//! percentiles, and this disk's floor (4 KiB append + fdatasync, and 4 KiB overwrite of a
//! preallocated file + fdatasync) measured in the same run.
//!
//! Run: `cargo run --release -p dbadger-bench --bin storage_append [-- --dir PATH]`
//! The directory (default: a temporary directory under /var/tmp) must be on the disk to measure.

#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use dbadger_bench::report::{latency_histogram, percentiles, record};
use dbadger_core::Command;
use dbadger_core::raft_types::{EntryPayload, LeaderId, LogEntry, LogId};
use dbadger_core::storage::{FlushCallback, LogStore};
use dbadger_lmdb::{LmdbLogStore, LmdbOptions, LmdbStore};
use openraft::vote::RaftLeaderId;

const VALUE_BYTES: usize = 256;
/// Each configuration runs this long (after a short warm-up).
const RUN_TIME: Duration = Duration::from_secs(4);

fn entry(index: u64) -> LogEntry {
    LogEntry {
        log_id: LogId::new(LeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(Command::Set {
            key: format!("key-{index:012}").into_bytes(),
            value: vec![(index % 251) as u8; VALUE_BYTES],
        }),
    }
}

struct Appender {
    log: LmdbLogStore,
    next_index: u64,
}

impl Appender {
    fn batch(&mut self, size: u64) -> Vec<LogEntry> {
        let entries = (self.next_index..self.next_index + size)
            .map(entry)
            .collect();
        self.next_index += size;
        entries
    }

    /// Appends `in_flight` batches at a time, waiting for all of them; returns entries/s,
    /// flushes per entry and the latency of each round.
    fn run(&mut self, batch: u64, in_flight: usize) -> (f64, f64, hdrhistogram::Histogram<u64>) {
        let mut latencies = latency_histogram();
        let before = self.log.stats();
        let start = Instant::now();
        let mut entries = 0u64;
        while start.elapsed() < RUN_TIME {
            let round = Instant::now();
            let (sender, receiver) = mpsc::channel();
            for _ in 0..in_flight {
                let sender = sender.clone();
                let entries = self.batch(batch);
                self.log
                    .append(
                        entries,
                        FlushCallback::new(move |result| drop(sender.send(result))),
                    )
                    .expect("append");
            }
            drop(sender);
            for result in receiver {
                result.expect("durable");
            }
            record(&mut latencies, round.elapsed());
            entries += batch * in_flight as u64;
        }
        let seconds = start.elapsed().as_secs_f64();
        let after = self.log.stats();
        // Each group of appends is one flush of the segment written (two at a roll-over).
        let flushes = after.durable_commits - before.durable_commits;
        (
            entries as f64 / seconds,
            flushes as f64 / entries as f64,
            latencies,
        )
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let base: PathBuf = match args.iter().position(|arg| arg == "--dir") {
        Some(position) => PathBuf::from(&args[position + 1]),
        None => PathBuf::from("/var/tmp"),
    };
    let dir = tempfile::tempdir_in(&base).expect("benchmark directory");
    println!(
        "dbadger storage_append: {VALUE_BYTES}-byte values, {RUN_TIME:?} per row, dir {}",
        dir.path().display()
    );

    let floor = dbadger_bench::floor::append_sync(dir.path(), RUN_TIME).expect("disk floor probe");
    println!(
        "disk floor (4 KiB append + fdatasync): {}",
        percentiles(&floor)
    );
    let overwrite =
        dbadger_bench::floor::overwrite_sync(dir.path(), RUN_TIME).expect("overwrite floor probe");
    println!(
        "disk floor (4 KiB overwrite + fdatasync): {}",
        percentiles(&overwrite)
    );

    let options = LmdbOptions {
        max_size_bytes: 8 << 30,
        ..LmdbOptions::default()
    };
    let (log, _) = LmdbStore::open(dir.path(), options)
        .expect("open")
        .into_parts();
    let mut appender = Appender { log, next_index: 1 };
    appender.run(16, 1); // warm-up: file growth, page cache

    println!();
    println!("| batch | in flight | entries/s | flushes/entry | round latency |");
    println!("| --- | --- | --- | --- | --- |");
    let mut single = None;
    for (batch, in_flight) in [(1, 1), (16, 1), (256, 1), (1, 16), (16, 16)] {
        let (rate, flushes, latencies) = appender.run(batch, in_flight);
        println!(
            "| {batch} | {in_flight} | {rate:.0} | {flushes:.3} | {} |",
            percentiles(&latencies)
        );
        if (batch, in_flight) == (1, 1) {
            single = Some(latencies);
        }
    }
    let single = single.expect("single-append row ran");
    println!();
    for (name, floor) in [("append", &floor), ("overwrite", &overwrite)] {
        println!(
            "single append p50 / {name} floor p50 = {:.2}, p99 ratio = {:.2}",
            single.value_at_quantile(0.5) as f64 / floor.value_at_quantile(0.5) as f64,
            single.value_at_quantile(0.99) as f64 / floor.value_at_quantile(0.99) as f64,
        );
    }
}
