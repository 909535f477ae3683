//! The `dbadger.v1` protocol: protobuf messages and gRPC services, nothing else.
//!
//! The `.proto` files under `proto/dbadger/v1/` are the contract: any gRPC client in any
//! language can use the `Kv` and `Cluster` services from them alone. The `Raft` service is
//! internal, node to node. This crate only holds the code generated from those files (by protox
//! and madsim-tonic-build, no system `protoc`), for both the normal build and the `--cfg madsim`
//! simulator build; translation to and from `dbadger-core` types lives in `dbadger-grpc`.

/// Version 1 of the dbadger protocol: messages, `Kv`, `Cluster` and `Raft` clients and servers.
#[allow(
    missing_docs,
    unreachable_pub,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    rust_2018_idioms
)]
pub mod v1 {
    tonic::include_proto!("dbadger.v1");
}

/// The encoded `FileDescriptorSet` of every dbadger `.proto` file, for gRPC reflection and for
/// tools that need the schema at run time.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/dbadger_descriptor.bin"));
