//! The dbadger network: tonic servers and clients for the `dbadger.v1` Raft, Kv and Cluster
//! services defined in `dbadger-proto`, with mutual TLS through rustls.
//!
//! This crate owns the translation between wire messages and `dbadger-core` types, and the
//! mapping of typed errors to gRPC status codes (at this boundary only). It implements the Raft
//! transport that openraft drives.
//!
//! Status: the implementation lands with the cluster issue.
