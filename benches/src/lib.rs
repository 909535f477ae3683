//! dbadger benchmarks: the latency harness (hdrhistogram percentiles over 1-node and 3-node
//! loopback clusters, embedded and over gRPC) and micro-benchmarks of the storage paths.
//!
//! Status: the harness lands with the cluster issue; storage micro-benchmarks with the LMDB issue.
