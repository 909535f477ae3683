//! [`Db`]: the embeddable handle of one dbadger node.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::runtime::Runtime;
use dbadger_core::raft_storage::{RaftLog, RaftStateMachineStore};
use dbadger_core::raft_types::RaftTypes;
use dbadger_core::raft_types::{Node as NodeAddress, NodeId, Vote};
use dbadger_core::storage::memory::{MemoryLogStore, MemoryStateMachine};
use dbadger_core::storage::{LogStore, StateMachineStore};
use dbadger_core::{
    Command, Config, ConfigError, Expected, KeyValue, Lookup, NewValue, PemSource, Query,
    ReadPreference, RequestError, Response, StartMode, StorageError, TlsConfig,
};
use dbadger_grpc::{Forwarder, GrpcNetwork, PeerTransport, RaftService, TlsMaterial};
use dbadger_lmdb::{LmdbOptions, LmdbStore};
use openraft::Raft;
use tokio::time::Instant;

use crate::metrics::Metrics;
use crate::node::{Engine, Node, NodeStatus};
use crate::server::{Listener, ServerHandle, Services, StopSignal};
use crate::timed_store::TimedStore;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration breaks a rule.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// The data directory could not be opened.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// openraft refused to start.
    #[error("raft: {0}")]
    Raft(String),
    /// The TLS material could not be read or used.
    #[error("TLS: {0}")]
    Tls(String),
    /// Joining the cluster failed.
    #[error("joining the cluster failed: {0}")]
    Join(RequestError),
}

/// The outcome of a delete: the revision it applied at and how many keys it removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deleted {
    /// The log index at which the delete applied.
    pub revision: u64,
    /// How many existing keys it removed.
    pub deleted: u64,
}

/// The outcome of `delete_range`: the removed keys in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletedKeys {
    /// The log index at which the delete applied.
    pub revision: u64,
    /// The removed keys.
    pub keys: Vec<Vec<u8>>,
}

/// A range or prefix answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Range {
    /// The entries, in key order.
    pub entries: Vec<KeyValue>,
    /// Whether the answer was cut short (by `count` or the response-size limit).
    pub more: bool,
}

/// The outcome of `compare_and_set`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompareAndSetOutcome {
    /// Whether the condition held and the change was made.
    pub succeeded: bool,
    /// The key's entry after the call; `None` if the key does not exist.
    pub current: Option<KeyValue>,
    /// The log index at which the command applied.
    pub revision: u64,
}

/// One running dbadger node. Cheap to clone; every clone talks to the same node.
#[derive(Clone)]
pub struct Db {
    engine: Arc<dyn Engine>,
    server: Arc<std::sync::Mutex<Option<ServerHandle>>>,
    addr: String,
    request_timeout: Duration,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

fn unexpected(response: Response) -> RequestError {
    RequestError::Internal(format!("unexpected response {response:?}"))
}

/// A fresh node id from the operating system's randomness (the hasher keys of `RandomState`)
/// and the clock; drawn once per data directory and stored.
fn random_node_id() -> NodeId {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos()),
    );
    hasher.finish().max(1)
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

/// Reads the PEM material of a TLS configuration (inline bytes or files).
fn load_tls(tls: &TlsConfig) -> Result<TlsMaterial, StartError> {
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
                ..LmdbOptions::default()
            };
            let store = LmdbStore::open(&config.data_dir, options)?;
            let id = store.node_id(random_node_id)?;
            let (log, machine) = store.into_parts();
            Db::start_with_storage(config, id, log, machine).await
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
        let listener = Listener::bind(&config.bind)?;
        let addr = config
            .advertise
            .clone()
            .unwrap_or_else(|| listener.local_addr().to_string());
        let tls = config.tls.as_ref().map(load_tls).transpose()?;
        let transport = PeerTransport::new(tls.as_ref());
        let metrics = Metrics::new();
        let store = Arc::new(TimedStore::new(machine, Arc::clone(&metrics)));
        step_down_after_restart(&log, id)?;
        let raft: Raft<RaftTypes<Runtime>, _> = Raft::new(
            id,
            raft_config,
            GrpcNetwork::<<S as StateMachineStore>::Snapshot>::new(
                transport.clone(),
                Duration::from_secs(1),
                config.heartbeat_timeout,
            ),
            RaftLog::new(Arc::new(log)),
            RaftStateMachineStore::new(Arc::clone(&store)),
        )
        .await
        .map_err(|error| StartError::Raft(error.to_string()))?;
        let node = Arc::new(Node {
            id,
            addr: addr.clone(),
            raft: raft.clone(),
            store: Arc::clone(&store),
            forwarder: Forwarder::new(transport),
            limits: config.limits,
            request_timeout: config.request_timeout,
            metrics: Arc::clone(&metrics),
        });
        let stop = StopSignal::new();
        let services = Services {
            raft: RaftService::new(
                raft.clone(),
                store,
                Arc::clone(&node) as Arc<dyn dbadger_grpc::ForwardHandler>,
                stop.fired(),
            ),
            node: Arc::clone(&node),
            tls,
            // Room for the largest valid request plus framing, so that a request just over the
            // limit reaches validation and gets its typed error.
            max_message_bytes: (config.limits.max_request_bytes * 2).max(4 << 20),
        };
        let server = crate::server::serve(listener, services, stop)?;
        let db = Db {
            engine: node,
            server: Arc::new(std::sync::Mutex::new(Some(server))),
            addr: addr.clone(),
            request_timeout: config.request_timeout,
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
            }
            StartMode::Join(seeds) if !initialized => {
                let deadline = Instant::now() + config.request_timeout.max(Duration::from_secs(30));
                if let Err(error) = db.engine.join(seeds.clone(), deadline).await {
                    db.close().await;
                    return Err(StartError::Join(error));
                }
            }
            _ => {}
        }
        Ok(db)
    }

    /// Stops the node: the server stops accepting, openraft shuts down, the store closes.
    pub async fn close(&self) {
        let server = self
            .server
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some((stop, task)) = server {
            let _ = stop.send(());
            let _ = task.await;
        }
        self.engine.shutdown().await;
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.request_timeout
    }

    fn stamp(&self, error: RequestError) -> RequestError {
        error.with_deadline(self.request_timeout)
    }

    /// Runs a write command with the default deadline and returns its response.
    pub async fn execute(&self, command: Command) -> Result<Response, RequestError> {
        self.engine
            .write(command, self.deadline())
            .await
            .map_err(|e| self.stamp(e))
    }

    /// Runs a query with the default deadline and returns its response.
    pub async fn query(
        &self,
        query: Query,
        preference: ReadPreference,
    ) -> Result<Response, RequestError> {
        self.engine
            .read(query, preference, self.deadline())
            .await
            .map_err(|e| self.stamp(e))
    }

    /// The address other nodes and clients reach this node at.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.engine.status().id
    }

    /// Whether this node is the leader now.
    pub fn is_leader(&self) -> bool {
        self.engine.status().is_leader
    }

    /// The leader this node knows of: id and address.
    pub fn leader(&self) -> Option<(NodeId, String)> {
        self.engine.status().leader
    }

    /// Every member: id, address, and whether it votes.
    pub fn nodes(&self) -> Vec<(NodeId, String, bool)> {
        self.engine.status().members
    }

    /// Whether this node knows a leader and has applied everything it knows to be committed.
    pub fn is_ready(&self) -> bool {
        self.engine.status().is_ready()
    }

    /// Stores `value` under `key`; returns the revision.
    pub async fn set(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<u64, RequestError> {
        let command = Command::Set {
            key: key.as_ref().to_vec(),
            value: value.as_ref().to_vec(),
        };
        match self.execute(command).await? {
            Response::Written { revision } => Ok(revision),
            other => Err(unexpected(other)),
        }
    }

    /// Stores all pairs atomically; `keys` and `values` must have the same length.
    pub async fn set_many<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        keys: &[K],
        values: &[V],
    ) -> Result<u64, RequestError> {
        let command = Command::set_many(
            keys.iter().map(|k| k.as_ref().to_vec()).collect(),
            values.iter().map(|v| v.as_ref().to_vec()).collect(),
        )?;
        match self.execute(command).await? {
            Response::Written { revision } => Ok(revision),
            other => Err(unexpected(other)),
        }
    }

    /// The entry under `key`; [`RequestError::NotFound`] if there is none.
    pub async fn get(
        &self,
        key: impl AsRef<[u8]>,
        preference: ReadPreference,
    ) -> Result<KeyValue, RequestError> {
        match self
            .query(
                Query::Get {
                    key: key.as_ref().to_vec(),
                },
                preference,
            )
            .await?
        {
            Response::Value(Some(entry)) => Ok(entry),
            Response::Value(None) => Err(RequestError::NotFound),
            other => Err(unexpected(other)),
        }
    }

    /// One lookup per key, in order.
    pub async fn get_many<K: AsRef<[u8]>>(
        &self,
        keys: &[K],
        preference: ReadPreference,
    ) -> Result<Vec<Lookup>, RequestError> {
        let keys = keys.iter().map(|k| k.as_ref().to_vec()).collect();
        match self.query(Query::GetMany { keys }, preference).await? {
            Response::Values(lookups) => Ok(lookups),
            other => Err(unexpected(other)),
        }
    }

    /// Every pair whose key starts with `prefix`, in key order.
    pub async fn get_prefix(
        &self,
        prefix: impl AsRef<[u8]>,
        preference: ReadPreference,
    ) -> Result<Range, RequestError> {
        self.range(
            Query::GetPrefix {
                prefix: prefix.as_ref().to_vec(),
            },
            preference,
        )
        .await
    }

    /// Pairs with `min <= key <= max` (each bound optional), at most `count` (0 = no limit).
    pub async fn get_range(
        &self,
        min: Option<&[u8]>,
        max: Option<&[u8]>,
        count: u64,
        preference: ReadPreference,
    ) -> Result<Range, RequestError> {
        let query = Query::GetRange {
            min: min.map(<[u8]>::to_vec),
            max: max.map(<[u8]>::to_vec),
            count,
        };
        self.range(query, preference).await
    }

    async fn range(&self, query: Query, preference: ReadPreference) -> Result<Range, RequestError> {
        match self.query(query, preference).await? {
            Response::Range { entries, more } => Ok(Range { entries, more }),
            other => Err(unexpected(other)),
        }
    }

    async fn delete_command(&self, command: Command) -> Result<Deleted, RequestError> {
        match self.execute(command).await? {
            Response::Deleted { revision, deleted } => Ok(Deleted { revision, deleted }),
            other => Err(unexpected(other)),
        }
    }

    /// Removes `key` (a missing key succeeds).
    pub async fn delete(&self, key: impl AsRef<[u8]>) -> Result<Deleted, RequestError> {
        self.delete_command(Command::Delete {
            key: key.as_ref().to_vec(),
        })
        .await
    }

    /// Removes every listed key atomically.
    pub async fn delete_many<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<Deleted, RequestError> {
        self.delete_command(Command::DeleteMany {
            keys: keys.iter().map(|k| k.as_ref().to_vec()).collect(),
        })
        .await
    }

    /// Removes every key starting with `prefix` atomically.
    pub async fn delete_prefix(&self, prefix: impl AsRef<[u8]>) -> Result<Deleted, RequestError> {
        self.delete_command(Command::DeletePrefix {
            prefix: prefix.as_ref().to_vec(),
        })
        .await
    }

    /// Removes every key.
    pub async fn delete_all(&self) -> Result<Deleted, RequestError> {
        self.delete_command(Command::DeleteAll).await
    }

    /// Removes every key with `min <= key <= max` atomically; returns the removed keys.
    pub async fn delete_range(
        &self,
        min: Option<&[u8]>,
        max: Option<&[u8]>,
    ) -> Result<DeletedKeys, RequestError> {
        let command = Command::DeleteRange {
            min: min.map(<[u8]>::to_vec),
            max: max.map(<[u8]>::to_vec),
        };
        match self.execute(command).await? {
            Response::DeletedKeys { revision, keys } => Ok(DeletedKeys { revision, keys }),
            other => Err(unexpected(other)),
        }
    }

    /// Changes `key` to `new` only if its current state matches `expected`.
    pub async fn compare_and_set(
        &self,
        key: impl AsRef<[u8]>,
        expected: Expected,
        new: NewValue,
    ) -> Result<CompareAndSetOutcome, RequestError> {
        let command = Command::CompareAndSet {
            key: key.as_ref().to_vec(),
            expected,
            new,
        };
        match self.execute(command).await? {
            Response::CompareAndSet {
                revision,
                succeeded,
                current,
            } => Ok(CompareAndSetOutcome {
                succeeded,
                current,
                revision,
            }),
            other => Err(unexpected(other)),
        }
    }

    /// Waits (up to the request timeout) until this node has applied the log up to
    /// `revision`, so that a following `Local` read here sees that write.
    pub async fn wait_applied(&self, revision: u64) -> Result<(), RequestError> {
        self.engine
            .wait_applied(revision, self.deadline())
            .await
            .map_err(|e| self.stamp(e))
    }

    /// This node's view of the cluster.
    pub fn stats(&self) -> NodeStatus {
        self.engine.status()
    }
}
