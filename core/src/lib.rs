//! dbadger-core: the sans-IO heart of dbadger.
//!
//! This crate owns every rule of the database and none of its I/O. It has no dependency on
//! tokio, tonic, heed, files, sockets, threads, clocks or OS randomness (a test in
//! `tests/sans_io.rs` keeps it so); time and randomness reach it through openraft's runtime
//! type, chosen by the caller. Everything here is testable with plain `#[test]` and proptest.
//!
//! # What lives here
//!
//! - The command model: [`Command`] (every write), [`Query`] (every read), [`Response`].
//! - [`codec`]: the versioned, canonical, bounded binary encoding of log entries, commands,
//!   responses, votes and memberships.
//! - [`rules`]: how a command changes the key space and how a query is answered, written once
//!   over the storage traits.
//! - [`limits`]: request validation with typed [`error::InvalidArgument`] errors.
//! - [`storage`]: the traits a store implements (a log with a durable vote; a state machine
//!   whose data, applied log id and membership commit atomically; snapshot files), and
//!   [`storage::memory`], the in-memory reference store.
//! - [`raft_storage`]: openraft's `RaftLogStorage` and `RaftStateMachine`, implemented once over
//!   those traits; [`snapshot`] and [`snapshot_format`]: building, installing and verifying
//!   snapshot files.
//! - [`raft_types`]: the openraft type configuration, generic over the async runtime.
//! - [`config`]: the node options, DBadger's validation rules, the mapping to openraft.
//! - `testing` (feature `testing`): the storage conformance suite every store runs.
//!
//! # How the pieces are used
//!
//! An adapter crate implements [`storage::LogStore`] and [`storage::StateMachineStore`], wraps
//! them in [`raft_storage::RaftLog`] and [`raft_storage::RaftStateMachineStore`], and hands
//! those to `openraft::Raft::new` with `RaftTypes<ItsRuntime>`. Requests are validated with
//! [`Limits`] before they are proposed; queries are answered with [`rules::read`] on a
//! [`storage::StateRead`] view.

pub mod answer_size;
pub mod codec;
pub mod command;
pub mod config;
pub mod error;
pub mod limits;
pub mod query;
pub mod raft_storage;
pub mod raft_types;
pub mod response;
pub mod restore;
pub mod rules;
pub mod snapshot;
pub mod snapshot_format;
pub mod storage;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(test)]
mod test_strategies;

pub use command::{Command, Expected, NewValue};
pub use config::{Config, PemSource, StartMode, TlsConfig};
pub use error::{
    ConfigError, DecodeError, Error, InvalidArgument, Outcome, RequestError, StorageError,
};
pub use limits::{Limits, MAX_KEY_BYTES};
pub use query::{Query, ReadPreference};
pub use raft_types::{NodeId, RaftTypes};
pub use response::{KeyValue, Lookup, Response, Versioned};
