//! The dbadger network: tonic servers and clients for the `dbadger.v1` services of
//! `dbadger-proto`.
//!
//! This crate owns the translation between wire messages and `dbadger-core` types
//! ([`convert`]), the mapping of errors to gRPC status codes (at this boundary only), and the
//! Raft transport: [`GrpcNetwork`] is the openraft network factory whose clients send
//! append-entries, votes and snapshots to peers, and [`RaftService`] is the server side that
//! hands them to the local `openraft::Raft`. tokio and tonic are taken through the madsim
//! renames, so the same code runs on real sockets and in the simulator.
//!
//! Snapshots travel as a header followed by bounded chunks ([`SNAPSHOT_CHUNK_BYTES`]) read
//! lazily from the snapshot file, so neither side holds a whole snapshot in memory.

mod append_pipeline;
mod cluster_service;
pub mod convert;
mod error;
pub mod fence;
mod forward;
mod kv_service;
#[cfg(not(madsim))]
mod malformed_request;
mod peer_link;
mod raft_client;
mod raft_service;
mod rpc_failure;
pub mod status;
mod tls;

pub use append_pipeline::MAX_APPENDS_IN_FLIGHT;
pub use cluster_service::{
    ClusterHandler, ClusterService, DEFAULT_MAX_UPLOAD_BYTES, RestoreSource, SnapshotBytes,
};
pub use error::WireError;
pub use fence::Fence;
pub use forward::{ForwardError, ForwardHandler, Forwarder, MAX_FORWARD_CHANNELS};
pub use kv_service::{KvHandler, KvService};
#[cfg(not(madsim))]
pub use malformed_request::{MalformedRequest, MalformedRequestLayer};
pub use peer_link::PeerOptions;
pub use raft_client::{GrpcNetwork, GrpcRaftClient, PeerAddresses};
pub use raft_service::{DEFAULT_MAX_SNAPSHOT_BYTES, RaftService};
pub use tls::{PeerTransport, TlsMaterial};

/// The size of one snapshot data chunk on the wire.
pub const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;
