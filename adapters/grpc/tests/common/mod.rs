//! Shared by the transport tests.

// Each test binary uses a part of this module.
#![allow(dead_code)]

use std::sync::Arc;

use dbadger_core::raft_storage::{RaftLog, RaftStateMachineStore};
use dbadger_core::raft_types::RaftTypes;
use dbadger_core::storage::memory::{MemoryLogStore, MemorySnapshot, MemoryStateMachine};
use dbadger_core::{Command, Query, RequestError, Response};
use dbadger_grpc::RaftService;
use dbadger_grpc::{ForwardHandler, GrpcNetwork, PeerOptions, PeerTransport};
use dbadger_proto::v1::raft_server::RaftServer;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use openraft::{Config, Raft, SnapshotPolicy};
use openraft_rt_tokio::TokioRuntime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

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

    fn record_address(&self, _: u64, _: String) -> BoxFuture<'_, Result<(), RequestError>> {
        Box::pin(async {
            Err(RequestError::ShuttingDown {
                outcome: dbadger_core::Outcome::NotApplied,
            })
        })
    }

    fn demote_member(&self, _: u64) -> BoxFuture<'_, Result<(), RequestError>> {
        Box::pin(async {
            Err(RequestError::ShuttingDown {
                outcome: dbadger_core::Outcome::NotApplied,
            })
        })
    }

    fn transfer_leadership(&self, _: Option<u64>) -> BoxFuture<'_, Result<(), RequestError>> {
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

/// A Raft node on memory stores, serving its Raft gRPC service on loopback.
pub(crate) struct TestNode {
    pub(crate) raft: TestRaft,
    pub(crate) machine: Arc<MemoryStateMachine>,
    pub(crate) addr: String,
    /// Stops the server gracefully: append streams end, then in-flight calls finish.
    pub(crate) stop: oneshot::Sender<()>,
    pub(crate) server: JoinHandle<()>,
}

/// Fast timers and a small snapshot threshold.
pub(crate) fn config() -> Arc<Config> {
    let config = Config {
        heartbeat_interval: 50,
        election_timeout_min: 300,
        election_timeout_max: 600,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(20),
        max_in_snapshot_log_to_keep: 0,
        // Small chunks are irrelevant here (the transport chunks by itself); keep defaults.
        ..Config::default()
    };
    Arc::new(config.validate().expect("valid config"))
}

/// Starts a node with memory stores and its Raft gRPC service on an ephemeral loopback port.
pub(crate) async fn start_node(id: u64) -> TestNode {
    let incoming = TcpIncoming::bind("127.0.0.1:0".parse().expect("address")).expect("bind");
    let addr = incoming.local_addr().expect("local address").to_string();
    let (raft, machine) = memory_raft(id, config()).await;
    let (stop, stopped) = oneshot::channel::<()>();
    let stopped = async move {
        let _ = stopped.await;
    }
    .boxed()
    .shared();
    let service = RaftService::new(
        raft.clone(),
        Arc::clone(&machine),
        Arc::new(NotForwarding),
        stopped.clone(),
    );
    let server = tokio::spawn(async move {
        Server::builder()
            .add_service(RaftServer::new(service))
            .serve_with_incoming_shutdown(incoming, stopped)
            .await
            .expect("server runs");
    });
    TestNode {
        raft,
        machine,
        addr,
        stop,
        server,
    }
}
