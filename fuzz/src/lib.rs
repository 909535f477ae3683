//! dbadger's fuzz targets, as plain functions.
//!
//! Each target takes arbitrary bytes and asserts a property that must hold for every input.
//! `fuzz_targets/` wraps them for libFuzzer (`cargo fuzz run <target>`, see `docs/fuzzing.md`);
//! `tests/corpus_replay.rs` replays every committed corpus file through them under `cargo test`,
//! so each finding, once added to the corpus, stays fixed.
//!
//! - [`decode_log_entry`]: decoding a log entry never panics, never allocates beyond its bound,
//!   and whatever decodes re-encodes to the identical bytes.
//! - [`decode_snapshot`]: reading a snapshot file never panics, and whatever reads back
//!   completely is rewritten byte for byte.
//! - [`raft_wire`]: a peer's Raft messages (append-entries, snapshot headers, votes,
//!   leadership transfers) convert and pass the protocol rules, or fail, without a panic; what
//!   converts survives the trip to the wire and back.
//! - [`state_machine_ops`]: operation sequences applied through the rules to the reference
//!   store agree with the naive model, with aborted transactions leaving no trace.

mod allocation;
mod raft_wire;
mod targets;

pub use allocation::{CountingAllocator, allocated_during};
pub use raft_wire::raft_wire;
pub use targets::{decode_log_entry, decode_snapshot, state_machine_ops};

/// A fuzz target: a property checked on one input, panicking when it fails.
pub type Target = fn(&[u8]);

/// The fuzz targets by name, for the corpus replay.
pub const TARGETS: &[(&str, Target)] = &[
    ("decode_log_entry", decode_log_entry),
    ("decode_snapshot", decode_snapshot),
    ("raft_wire", raft_wire),
    ("state_machine_ops", state_machine_ops),
];
