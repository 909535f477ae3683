//! dbadger benchmarks: the storage micro-benchmarks (`storage_append`) and, with the cluster,
//! the latency harness over 1-node and 3-node loopback clusters, and the peer benchmark against
//! etcd on this machine (`peer`), with the floor it measures in the same run (`floor`).
//!
//! Benchmarks report percentiles and ratios from one run, never pass/fail thresholds: these
//! machines are shared and noisy. Method and recorded results: `docs/benchmarks.md`.

pub mod floor;
pub mod peer;
pub mod report;
