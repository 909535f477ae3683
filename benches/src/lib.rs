//! dbadger benchmarks: the storage micro-benchmarks (`storage_append`) and, with the cluster,
//! the latency harness over 1-node and 3-node loopback clusters.
//!
//! Benchmarks report percentiles and ratios from one run, never pass/fail thresholds: these
//! machines are shared and noisy. Method and recorded results: `docs/benchmarks.md`.

pub mod report;
