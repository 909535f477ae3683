//! dbadger: a distributed, embeddable key-value database.
//!
//! This is the crate users embed. It owns `Db::start` / `close`, every key-value operation with
//! its read preference and deadline, request forwarding to the leader, cluster membership, and the
//! node driver that ties openraft, the storage adapter and the network adapter together.
//!
//! The command model, the state-machine rules, validation and configuration are re-exported from
//! [`dbadger_core`], so an embedding program needs this crate only.
//!
//! Status: `Db` lands with the cluster issue; today this crate re-exports the core model.

pub use dbadger_core as core;
