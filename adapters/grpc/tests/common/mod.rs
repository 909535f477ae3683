//! Shared by the transport tests.

use std::sync::Arc;

use dbadger_core::raft_storage::{RaftLog, RaftStateMachineStore};
use dbadger_core::raft_types::RaftTypes;
use dbadger_core::storage::memory::{MemoryLogStore, MemorySnapshot, MemoryStateMachine};
use dbadger_core::{Command, Query, RequestError, Response};
use dbadger_grpc::{ForwardHandler, GrpcNetwork, PeerOptions, PeerTransport};
use futures_util::future::BoxFuture;
use openraft::{Config, Raft};
use openraft_rt_tokio::TokioRuntime;

/// The Raft types of the transport tests: tokio's runtime.
pub(crate) type Types = RaftTypes<TokioRuntime>;

/// A Raft node over the memory stores.
pub(crate) type TestRaft = Raft<Types, RaftStateMachineStore<MemoryStateMachine>>;

/// Starts Raft node `id` on fresh memory stores, talking to peers over plain gRPC; returns it
/// with its state machine.
pub(crate) async fn memory_raft(
    id: u64,
    config: Arc<Config>,
) -> (TestRaft, Arc<MemoryStateMachine>) {
    let machine = Arc::new(MemoryStateMachine::new());
    let raft = Raft::new(
        id,
        config,
        GrpcNetwork::<MemorySnapshot>::new(PeerTransport::default(), PeerOptions::default()),
        RaftLog::new(Arc::new(MemoryLogStore::new())),
        RaftStateMachineStore::new(Arc::clone(&machine)),
    )
    .await
    .expect("raft starts");
    (raft, machine)
}

/// The transport tests exercise replication only; forwarded requests are refused.
pub(crate) struct NotForwarding;

impl ForwardHandler for NotForwarding {
    fn write(&self, _: Command) -> BoxFuture<'_, Result<Response, RequestError>> {
        Box::pin(async {
            Err(RequestError::ShuttingDown {
                outcome: dbadger_core::Outcome::NotApplied,
            })
        })
    }

    fn linearizable_read(&self, _: Query) -> BoxFuture<'_, Result<Response, RequestError>> {
        Box::pin(async {
            Err(RequestError::ShuttingDown {
                outcome: dbadger_core::Outcome::NotApplied,
            })
        })
    }

    fn add_member(&self, _: u64, _: String, _: bool) -> BoxFuture<'_, Result<(), RequestError>> {
        Box::pin(async {
            Err(RequestError::ShuttingDown {
                outcome: dbadger_core::Outcome::NotApplied,
            })
        })
    }

    fn remove_member(&self, _: u64) -> BoxFuture<'_, Result<(), RequestError>> {
        Box::pin(async {
            Err(RequestError::ShuttingDown {
                outcome: dbadger_core::Outcome::NotApplied,
            })
        })
    }
}
