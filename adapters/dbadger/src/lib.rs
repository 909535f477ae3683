//! dbadger: a distributed, embeddable key-value database.
//!
//! This is the crate users embed. [`Db::start`] runs a node (openraft on LMDB, or on memory in
//! in-memory mode, serving the Raft transport on one TCP port) and [`Db`] offers every operation
//! of DBadger plus compare-and-set. Writes and linearizable reads issued on a follower are
//! forwarded to the leader; every call has a deadline; no leader or no quorum gives a retryable
//! [`Error::Unavailable`], never a hang.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use dbadger::{Config, Db, ReadPreference, StartMode};
//!
//! let config = Config {
//!     bind: "127.0.0.1:7400".into(),
//!     data_dir: "dbadger-data".into(),
//!     start: StartMode::Bootstrap,
//!     ..Config::default()
//! };
//! let db = Db::start(config).await?;
//! db.set(b"greeting", b"hello").await?;
//! let entry = db.get(b"greeting", ReadPreference::Leader).await?;
//! assert_eq!(entry.value, b"hello");
//! db.close().await;
//! # Ok(()) }
//! ```
//!
//! One TCP port serves the Raft transport, the public `Kv` and `Cluster` gRPC services and HTTP
//! `/metrics`, with optional mutual TLS. [`Db::start_with_storage`] runs a node on stores of
//! your choosing. Built with `--cfg madsim`, the same node runs in the deterministic simulator
//! (`dbadger-sim`) on the runtime in `simulation`.

mod admission;
mod answers;
mod db;
mod handlers;
#[cfg(not(madsim))]
mod health;
mod joint_config;
mod lifecycle;
mod membership;
mod membership_plan;
mod metrics;
mod node;
mod node_status;
mod peer_addresses;
mod recover;
mod requests;
mod restore;
mod role_log;
mod routing;
mod runtime;
mod server;
#[cfg(madsim)]
pub mod simulation;
mod snapshots;
mod start;
mod start_error;
mod timed_store;

pub use answers::{CompareAndSetOutcome, Deleted, DeletedKeys, Range};
pub use db::Db;
/// The snapshot file format, to read or verify an exported snapshot.
pub use dbadger_core::restore::RestoreStep;
pub use dbadger_core::snapshot_format;
pub use dbadger_core::{
    Command, Config, Expected, KeyValue, Limits, Lookup, NewValue, NodeId, Outcome, PemSource,
    Query, ReadPreference, RequestError as Error, Response, StartMode, TlsConfig, Versioned,
};
pub use lifecycle::LEFT_MARK;
pub use node_status::{NodeStatus, READY_APPLY_LAG};
pub use restore::{RestoreInfo, SnapshotSource};
pub use snapshots::SnapshotInfo;
pub use start_error::StartError;
