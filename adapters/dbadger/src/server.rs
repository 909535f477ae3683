//! The node's one port: the Raft, Kv and Cluster gRPC services and, on real sockets, the
//! standard `grpc.health.v1` and server reflection services and the HTTP `/metrics` page.
//!
//! On real sockets the listener is a `TcpIncoming` with `TCP_NODELAY` and, when configured,
//! rustls mutual TLS. Under `--cfg madsim` the simulated transport serves the same three gRPC
//! services on the node's simulated address; it has no TLS and no HTTP/1, so `/metrics` is not
//! served there (the simulator reads the same figures through [`crate::Db::stats`]).

use std::net::SocketAddr;
use std::sync::Arc;

use dbadger_core::ConfigError;
use dbadger_core::storage::StateMachineStore;
use dbadger_grpc::{ClusterService, KvService, RaftService, TlsMaterial};
use dbadger_proto::v1::cluster_server::ClusterServer;
use dbadger_proto::v1::kv_server::KvServer;
use dbadger_proto::v1::raft_server::RaftServer;
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Server;

use crate::node::Node;
use crate::runtime::Runtime;
use crate::start_error::StartError;
use crate::timed_store::TimedStore;

/// The running gRPC server: the signal that stops it and its task.
pub(crate) type ServerHandle = (oneshot::Sender<()>, JoinHandle<()>);

/// The signal that stops the server. The Raft service's append streams watch it too, because a
/// graceful shutdown waits for open streams and a leader holds its stream open while it leads.
pub(crate) struct StopSignal {
    sender: oneshot::Sender<()>,
    fired: Shared<BoxFuture<'static, ()>>,
}

impl StopSignal {
    pub(crate) fn new() -> StopSignal {
        let (sender, receiver) = oneshot::channel::<()>();
        let fired = async move {
            let _ = receiver.await;
        }
        .boxed()
        .shared();
        StopSignal { sender, fired }
    }

    /// Completes when the signal fires (or its sender is dropped).
    pub(crate) fn fired(&self) -> impl Future<Output = ()> + Send + 'static {
        self.fired.clone()
    }
}

/// A bound listening address.
pub(crate) struct Listener {
    #[cfg(not(madsim))]
    incoming: tonic::transport::server::TcpIncoming,
    local: SocketAddr,
}

fn parse_bind(bind: &str) -> Result<SocketAddr, StartError> {
    bind.parse().map_err(|_| {
        StartError::Config(ConfigError::OutOfRange {
            option: "bind",
            value: bind.to_owned(),
            rule: "must be an IP address and port",
        })
    })
}

impl Listener {
    /// Binds `bind` (`ip:port`; port 0 picks a free port).
    #[cfg(not(madsim))]
    pub(crate) fn bind(bind: &str) -> Result<Listener, StartError> {
        let failed = |source| StartError::Bind {
            addr: bind.to_owned(),
            source,
        };
        let incoming = tonic::transport::server::TcpIncoming::bind(parse_bind(bind)?)
            .map_err(failed)?
            // Small request/response pairs must not wait on Nagle's algorithm (40 ms stalls
            // against delayed acknowledgements).
            .with_nodelay(Some(true));
        let local = incoming.local_addr().map_err(failed)?;
        Ok(Listener { incoming, local })
    }

    /// The simulated network binds when the server starts; the address must name a port.
    #[cfg(madsim)]
    pub(crate) fn bind(bind: &str) -> Result<Listener, StartError> {
        Ok(Listener {
            local: parse_bind(bind)?,
        })
    }

    /// The address actually bound.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

/// Everything the server needs.
pub(crate) struct Services<S: StateMachineStore> {
    pub(crate) node: Arc<Node<TimedStore<S>>>,
    pub(crate) raft: RaftService<Runtime, TimedStore<S>>,
    /// Mutual TLS on real sockets (the simulated network has none).
    #[cfg_attr(madsim, allow(dead_code))]
    pub(crate) tls: Option<TlsMaterial>,
    /// The largest gRPC message accepted.
    pub(crate) max_message_bytes: usize,
}

/// Starts serving on `listener` until the returned handle's signal fires.
#[cfg(not(madsim))]
pub(crate) fn serve<S: StateMachineStore>(
    listener: Listener,
    services: Services<S>,
    stop: StopSignal,
) -> Result<ServerHandle, StartError> {
    use tonic::service::Routes;

    // A body that is not protobuf is the client's INVALID_ARGUMENT, not tonic's INTERNAL.
    let mut server = Server::builder().layer(dbadger_grpc::MalformedRequestLayer);
    if let Some(tls) = &services.tls {
        server = server
            .tls_config(tls.server_config())
            .map_err(|error| StartError::Tls(error.to_string()))?;
    }
    let node = services.node;
    let max = services.max_message_bytes;
    let (health_reporter, health) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(dbadger_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|error| StartError::Raft(format!("cannot serve reflection: {error}")))?;
    let grpc = Routes::new(RaftServer::new(services.raft).max_decoding_message_size(max))
        .add_service(KvServer::new(kv_service(&node)).max_decoding_message_size(max))
        .add_service(ClusterServer::new(cluster_service(&node)))
        .add_service(health)
        .add_service(reflection);
    tokio::spawn(crate::health::report_readiness(
        Arc::clone(&node),
        health_reporter,
    ));
    let scrape = {
        let node = Arc::clone(&node);
        move || {
            let node = Arc::clone(&node);
            async move { node.metrics.render(&crate::node::Engine::status(&*node)) }
        }
    };
    let routes = Routes::from(
        grpc.into_axum_router()
            .route("/metrics", axum::routing::get(scrape)),
    );
    let stopped = stop.fired();
    let task = tokio::spawn(async move {
        let _ = server
            .accept_http1(true)
            .add_routes(routes)
            .serve_with_incoming_shutdown(listener.incoming, stopped)
            .await;
    });
    Ok((stop.sender, task))
}

/// Starts serving the gRPC services on the simulated network.
#[cfg(madsim)]
pub(crate) fn serve<S: StateMachineStore>(
    listener: Listener,
    services: Services<S>,
    stop: StopSignal,
) -> Result<ServerHandle, StartError> {
    let node = services.node;
    let max = services.max_message_bytes;
    let router = Server::builder()
        .add_service(RaftServer::new(services.raft).max_decoding_message_size(max))
        .add_service(KvServer::new(kv_service(&node)).max_decoding_message_size(max))
        .add_service(ClusterServer::new(cluster_service(&node)));
    let stopped = stop.fired();
    let task = tokio::spawn(async move {
        let _ = router.serve_with_shutdown(listener.local, stopped).await;
    });
    Ok((stop.sender, task))
}

fn kv_service<S: StateMachineStore>(node: &Arc<Node<TimedStore<S>>>) -> KvService {
    KvService::new(Arc::clone(node) as Arc<dyn dbadger_grpc::KvHandler>)
}

fn cluster_service<S: StateMachineStore>(node: &Arc<Node<TimedStore<S>>>) -> ClusterService {
    ClusterService::new(Arc::clone(node) as Arc<dyn dbadger_grpc::ClusterHandler>)
}
