//! Starting a node: opening its store, binding its port, starting openraft and the server,
//! then bootstrapping, joining or resuming as the configuration says.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dbadger_core::raft_storage::{RaftLog, RaftStateMachineStore};
use dbadger_core::raft_types::{Node as NodeAddress, NodeId, RaftTypes, Vote};
use dbadger_core::storage::memory::{MemoryLogStore, MemoryStateMachine};
use dbadger_core::storage::{LogStore, StateMachineStore};
use dbadger_core::{Config, PemSource, StartMode, TlsConfig};
use dbadger_grpc::{
    Fence, Forwarder, GrpcNetwork, PeerOptions, PeerTransport, RaftService, TlsMaterial,
};
use dbadger_lmdb::{LmdbOptions, LmdbStore};
use openraft::Raft;
use tokio::time::Instant;

use crate::db::Db;
use crate::metrics::Metrics;
use crate::node::Node;
use crate::node_status::Readiness;
use crate::runtime::Runtime;
use crate::server::{Listener, Services, StopSignal};
use crate::start_error::StartError;
use crate::timed_store::TimedStore;

/// A fresh node id from the operating system's randomness (the hasher keys of `RandomState`)
/// and the clock; drawn once per data directory and stored.
pub(crate) fn random_node_id() -> NodeId {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos()),
    );
    hasher.finish().max(1)
}

/// The id of the cluster node `founder` bootstraps (or recovers into): derived from the
/// founder's id, itself drawn at random for each data directory, so every founding gives a new
/// one (and the simulator's stay reproducible).
pub(crate) fn founded_cluster(founder: NodeId) -> u64 {
    (founder.rotate_left(29) ^ 0x9e37_79b9_7f4a_7c15).max(1)
}

/// A leader that restarts would resume leading its term (openraft restores a committed vote
/// for itself as leadership). But its own log may have lost entries it replicated before the
/// crash, ones a quorum of followers stored and that were acknowledged: resuming, it would
/// write different entries at the same indices under the same leader id, and the logs would
/// diverge. (Found by the simulator, seed 1600.) So on start a committed vote for this node is
/// stored back as an uncommitted one: the node rejoins as a follower, and only a node holding
/// every committed entry can win the next election.
fn step_down_after_restart(log: &impl LogStore, id: NodeId) -> Result<(), StartError> {
    if let Some(vote) = log.vote()?
        && vote.is_committed()
        && vote.leader_id.node_id == id
    {
        log.save_vote(&Vote::new(vote.leader_id.term, id))?;
    }
    Ok(())
}

/// The largest gRPC message a node accepts, on its server and from the nodes it forwards to:
/// room for the largest valid request plus framing (so that a request just over the limit
/// reaches validation and gets its typed error), and for the largest answer the response limit
/// allows in the forwarding codec, whose framing per entry can be up to three times protobuf's
/// (so that an applied write's answer always comes back to the follower that forwarded it).
fn max_message_bytes(config: &Config) -> usize {
    let limits = &config.limits;
    (limits.max_request_bytes * 2)
        .max(limits.max_response_bytes.saturating_mul(3))
        .saturating_add(1 << 20)
        .max(4 << 20)
}

/// Reads the PEM material of a TLS configuration (inline bytes or files).
pub(crate) fn load_tls(tls: &TlsConfig) -> Result<TlsMaterial, StartError> {
    let read = |source: &PemSource, what: &str| match source {
        PemSource::Bytes(bytes) => Ok(bytes.clone()),
        PemSource::Path(path) => std::fs::read(path).map_err(|error| {
            StartError::Tls(format!(
                "cannot read the {what} {}: {error}",
                path.display()
            ))
        }),
    };
    Ok(TlsMaterial::new(
        read(&tls.ca, "CA certificate")?,
        read(&tls.cert, "certificate")?,
        read(&tls.key, "private key")?,
    ))
}

/// How long a start waits for a node closing on the same data directory in this process to
/// let go of it.
const RELEASE_PATIENCE: Duration = Duration::from_secs(5);

/// Opens the LMDB store in `dir`. A node of this process that was closed on the same directory
/// may still be letting go of it (openraft's tasks drop their handles a moment after
/// shutdown): the open is retried while the directory is busy, up to [`RELEASE_PATIENCE`].
pub(crate) async fn open_when_released(
    dir: &std::path::Path,
    options: LmdbOptions,
) -> Result<LmdbStore, StartError> {
    let give_up = Instant::now() + RELEASE_PATIENCE;
    loop {
        match LmdbStore::open(dir, options.clone()) {
            Err(dbadger_core::StorageError::Io(busy))
                if busy.kind() == std::io::ErrorKind::ResourceBusy && Instant::now() < give_up =>
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            opened => return opened.map_err(StartError::from),
        }
    }
}

impl Db {
    /// Starts a node: opens its store (LMDB in `data_dir`, or memory), binds `bind`, starts
    /// openraft, and bootstraps, joins or resumes as `config.start` says.
    pub async fn start(config: Config) -> Result<Db, StartError> {
        config.validate()?;
        if config.in_memory {
            let log = MemoryLogStore::new();
            let machine = MemoryStateMachine::new();
            Db::start_with_storage(config, random_node_id(), log, machine).await
        } else {
            let options = LmdbOptions {
                max_size_bytes: config.max_storage_bytes,
                snapshot_retain: config.snapshot_retain,
                write_timeout: config.disk_write_timeout,
                max_queued_writes: config.max_queued_log_writes,
                ..LmdbOptions::default()
            };
            if crate::lifecycle::has_left(&config.data_dir) {
                if !matches!(config.start, StartMode::Join(_)) {
                    return Err(StartError::Left(crate::lifecycle::left_error(
                        &config.data_dir,
                    )));
                }
                crate::lifecycle::discard_left_node(&config.data_dir)
                    .map_err(|error| StartError::Storage(dbadger_core::StorageError::Io(error)))?;
            }
            if config.start == StartMode::Recover {
                let transport =
                    PeerTransport::new(config.tls.as_ref().map(load_tls).transpose()?.as_ref());
                crate::recover::recover(&config, options.clone(), &transport).await?;
            }
            let store = open_when_released(&config.data_dir, options).await?;
            let id = store.node_id(random_node_id)?;
            let (log, machine) = store.into_parts();
            let data_dir = config.data_dir.clone();
            let mut db = Db::start_with_storage(config, id, log, machine).await?;
            db.data_dir = Some(data_dir);
            Ok(db)
        }
    }

    /// Starts a node with id `id` on stores of the caller's choosing (`config.data_dir` and
    /// `config.in_memory` are then not used). The stores must keep the contracts of
    /// [`LogStore`] and [`StateMachineStore`]; `id` must be the one the stores were first
    /// started with. The simulator starts its nodes this way, on its fault-injecting store.
    pub async fn start_with_storage<L: LogStore, S: StateMachineStore>(
        config: Config,
        id: NodeId,
        log: L,
        machine: S,
    ) -> Result<Db, StartError> {
        config.validate()?;
        let raft_config = Arc::new(config.raft_config()?);
        let patience = config.longest_failover();
        let listener = Listener::bind(&config.bind)?;
        let addr = config.advertised_address(listener.local_addr());
        let tls = config.tls.as_ref().map(load_tls).transpose()?;
        let transport = PeerTransport::new(tls.as_ref()).with_keepalive(config.heartbeat_timeout);
        let metrics = Metrics::new();
        let store = Arc::new(TimedStore::new(machine, Arc::clone(&metrics)));
        step_down_after_restart(&log, id)?;
        let log = Arc::new(log);
        let fence = {
            let recorder = Arc::clone(&log);
            Fence::new(
                id,
                log.cluster_id()?.unwrap_or(0),
                Box::new(move |cluster| {
                    if let Err(error) = recorder.save_cluster_id(cluster) {
                        tracing::warn!(%error, "could not record the cluster id");
                    }
                }),
            )
        };
        let network = GrpcNetwork::<<S as StateMachineStore>::Snapshot>::new(
            transport.clone(),
            PeerOptions {
                connect_timeout: config.peer_connect_timeout,
                min_rpc_timeout: config.heartbeat_timeout,
                retry_min: config.peer_retry_min,
                retry_max: config.peer_retry_max,
            },
        )
        .with_fence(Arc::clone(&fence));
        let peer_addresses = network.addresses();
        let raft: Raft<RaftTypes<Runtime>, _> = Raft::new(
            id,
            raft_config,
            network,
            // A replication request holds at most a request's worth of entries, well inside
            // the message size every node accepts (`max_message_bytes`).
            RaftLog::new(log).with_batch_bytes(config.limits.max_request_bytes),
            RaftStateMachineStore::new(Arc::clone(&store))
                .with_limits(config.limits)
                .with_blocking_section(crate::runtime::blocking_section),
        )
        .await
        .map_err(|error| StartError::Raft(error.to_string()))?;
        let max_message_bytes = max_message_bytes(&config);
        let node = Arc::new(Node {
            id,
            addr: addr.clone(),
            raft: raft.clone(),
            store: Arc::clone(&store),
            forwarder: Forwarder::new(transport)
                .with_max_message_bytes(max_message_bytes)
                .with_connect_timeout(config.peer_connect_timeout)
                .with_fence(Arc::clone(&fence)),
            limits: config.limits,
            request_timeout: config.request_timeout,
            patience,
            metrics: Arc::clone(&metrics),
            fence: Arc::clone(&fence),
            readiness: Readiness::default(),
        });
        let stop = StopSignal::new();
        let services = Services {
            raft: RaftService::new(
                raft.clone(),
                store,
                Arc::clone(&node) as Arc<dyn dbadger_grpc::ForwardHandler>,
                stop.fired(),
            )
            .with_max_snapshot_bytes(config.max_storage_bytes)
            .with_fence(Arc::clone(&fence)),
            node: Arc::clone(&node),
            tls,
            max_message_bytes,
        };
        let server = crate::server::serve(listener, services, stop)?;
        tokio::spawn(crate::role_log::log_role_changes(raft.clone()));
        tokio::spawn(crate::peer_addresses::follow_membership(
            raft.clone(),
            peer_addresses,
        ));
        tokio::spawn(crate::snapshots::run_snapshot_timer(
            Arc::downgrade(&node),
            config.snapshot_interval,
        ));
        tokio::spawn(crate::joint_config::finish_interrupted_changes(
            Arc::downgrade(&node),
            patience,
        ));
        let db = Db {
            engine: Arc::clone(&node) as Arc<dyn crate::node::Engine>,
            server: Arc::new(std::sync::Mutex::new(Some(server))),
            addr: addr.clone(),
            request_timeout: config.request_timeout,
            leave_on_stop: config.leave_on_stop,
            data_dir: None,
        };
        let initialized = raft
            .is_initialized()
            .await
            .map_err(|error| StartError::Raft(error.to_string()))?;
        match &config.start {
            StartMode::Bootstrap if !initialized => {
                let members = std::collections::BTreeMap::from([(id, NodeAddress { addr })]);
                raft.initialize(members)
                    .await
                    .map_err(|error| StartError::Raft(error.to_string()))?;
                fence.found(founded_cluster(id));
                if let Some(file) = &config.restore_from
                    && let Err(error) = db.restore(file).await
                {
                    db.close().await;
                    return Err(StartError::Restore(error));
                }
            }
            StartMode::Join(seeds) if !initialized => {
                let deadline = Instant::now() + config.request_timeout.max(Duration::from_secs(30));
                if let Err(error) = db.engine.join(seeds.clone(), deadline).await {
                    db.close().await;
                    return Err(StartError::Join(error));
                }
            }
            _ if initialized => {
                // Restarted with another address: tell the cluster, in the background (until
                // the membership has it, the leader reaches this node at the old address).
                let seeds = match &config.start {
                    StartMode::Join(seeds) => seeds.clone(),
                    _ => Vec::new(),
                };
                tokio::spawn(async move { node.announce_address(seeds).await });
            }
            _ => {}
        }
        Ok(db)
    }
}
