//! Conversions between `dbadger.v1` wire messages and `dbadger-core` / openraft types.
//!
//! Conversions from the wire are fallible ([`crate::WireError`]): every required field is
//! checked and embedded encodings are decoded with the core codec, which never panics.

pub mod kv;
pub mod raft;
pub mod raft_rules;
