//! Deterministic simulation of dbadger clusters.
//!
//! Under `--cfg madsim` this crate runs the real node code (dbadger + dbadger-grpc with tokio and
//! tonic renamed to madsim) over a simulator store that models durability ([`store`]), injects
//! partitions, message loss and delay, crashes, pauses, clock skew and drift, storage faults and
//! membership changes from one seed, records every client operation and checks linearizability,
//! durability of acknowledged writes, Raft invariants and liveness. See docs/simulation.md.
//!
//! The linearizability checker ([`linearizability`]) is plain code and is built (and unit
//! tested) in every build.

pub mod linearizability;

#[cfg(madsim)]
pub mod admin;
#[cfg(madsim)]
pub mod checks;
#[cfg(madsim)]
pub mod client;
#[cfg(madsim)]
pub mod cluster;
#[cfg(madsim)]
pub mod coverage;
#[cfg(madsim)]
pub mod history;
#[cfg(madsim)]
pub mod invariants;
#[cfg(madsim)]
mod nemesis;
#[cfg(madsim)]
pub mod recover_run;
#[cfg(madsim)]
pub mod restore_run;
#[cfg(madsim)]
mod revisions;
#[cfg(madsim)]
pub mod scenario;
#[cfg(madsim)]
mod scope;
#[cfg(madsim)]
pub mod step_monitor;
#[cfg(madsim)]
pub mod store;
#[cfg(madsim)]
mod workload;
