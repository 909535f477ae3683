//! [`Db`]: the embeddable handle of one dbadger node.

use std::sync::Arc;
use std::time::Duration;

use dbadger_core::raft_types::NodeId;
use dbadger_core::{
    Command, Expected, KeyValue, Lookup, NewValue, Query, ReadPreference, RequestError, Response,
};
use tokio::time::Instant;

use crate::answers::{CompareAndSetOutcome, Deleted, DeletedKeys, Range};
use crate::node::Engine;
use crate::node_status::NodeStatus;
use crate::server::ServerHandle;

/// One running dbadger node. Cheap to clone; every clone talks to the same node.
#[derive(Clone)]
pub struct Db {
    pub(crate) engine: Arc<dyn Engine>,
    pub(crate) server: Arc<std::sync::Mutex<Option<ServerHandle>>>,
    pub(crate) addr: String,
    pub(crate) request_timeout: Duration,
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

impl Db {
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

    /// Why this node's Raft core stopped, if it failed (its disk, most likely); `None` while it
    /// runs and after a normal stop. A failed node serves nothing (requests fail with
    /// [`RequestError::Fatal`]) until it is restarted; health checks report it not serving.
    pub fn failure(&self) -> Option<String> {
        self.engine.status().failure
    }

    /// Whether this node has not failed, knows a leader and has applied everything it knows to
    /// be committed.
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

    /// Removes every key with `min <= key <= max` atomically; returns how many it removed and
    /// the removed keys in order, listed up to the response limit.
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
            Response::DeletedKeys {
                revision,
                keys,
                deleted,
                more,
            } => Ok(DeletedKeys {
                revision,
                keys,
                deleted,
                more,
            }),
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
