//! Deterministic simulation of dbadger clusters.
//!
//! Under `--cfg madsim` this crate runs the real node code (dbadger + dbadger-grpc with tokio and
//! tonic renamed to madsim) over a simulator store that models durability, injects partitions,
//! crashes, pauses, clock skew and storage faults from one seed, records every client operation
//! and checks linearizability, durability of acknowledged writes, Raft invariants and liveness.
//!
//! Status: the harness lands with the simulation issue.
