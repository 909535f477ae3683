//! [`Db`]: the embeddable handle of one dbadger node.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use dbadger_core::raft_types::NodeId;
use dbadger_core::{
    Command, Expected, KeyValue, Lookup, NewValue, Query, ReadPreference, RequestError, Response,
};
use tokio::time::Instant;

use crate::answers::{CompareAndSetOutcome, Deleted, DeletedKeys, Range};
use crate::lifecycle::{leave_failed, mark_left};
use crate::membership_plan::MembershipChange;
use crate::node::Engine;
use crate::node_status::NodeStatus;
use crate::restore::{RestoreInfo, SnapshotSource};
use crate::server::ServerHandle;
use crate::snapshots::SnapshotInfo;

/// One running dbadger node. Cheap to clone; every clone talks to the same node.
#[derive(Clone)]
pub struct Db {
    pub(crate) engine: Arc<dyn Engine>,
    pub(crate) server: Arc<std::sync::Mutex<Option<ServerHandle>>>,
    pub(crate) addr: String,
    pub(crate) request_timeout: Duration,
    /// Whether [`Db::close`] leaves the cluster first.
    pub(crate) leave_on_stop: bool,
    /// Where a node that left records it (`None`: stores without a data directory).
    pub(crate) data_dir: Option<PathBuf>,
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
    /// Stops the node: it leaves the cluster first unless `Config::leave_on_stop` is off (see
    /// [`Db::leave`]; a leave that fails is logged and the stop goes on), then the server stops
    /// accepting, openraft shuts down and the store closes.
    pub async fn close(&self) {
        if self.leave_on_stop
            && let Err(error) = self.leave().await
        {
            tracing::warn!("{}", leave_failed(&error));
        }
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

    /// Removes this node from the cluster's membership; a leader hands its leadership to the
    /// best placed voter first. Returns `true` if the node left, `false` if there was nothing
    /// to leave (it is not a member, or it is the only one). The node keeps running, outside
    /// the cluster; a node with a data directory records that it left, and when started again
    /// with `StartMode::Join` it discards its old data and joins as a new node with a new id
    /// (started any other way, it refuses to start). The last voter of a cluster with learners
    /// cannot leave ([`RequestError::Refused`]).
    pub async fn leave(&self) -> Result<bool, RequestError> {
        let left = self
            .engine
            .leave(self.deadline())
            .await
            .map_err(|e| self.stamp(e))?;
        if left && let Some(dir) = &self.data_dir {
            mark_left(dir, self.id()).map_err(|error| {
                RequestError::Internal(format!(
                    "left the cluster, but could not record it in {}: {error}",
                    dir.display()
                ))
            })?;
        }
        Ok(left)
    }

    async fn change_membership(&self, change: MembershipChange) -> Result<(), RequestError> {
        let deadline = Instant::now() + self.request_timeout.max(Duration::from_secs(30));
        self.engine
            .change_membership(change, deadline)
            .await
            .map_err(|e| self.stamp(e))
    }

    /// Adds node `id`, reachable at `addr`, as a voter: it catches up as a learner first and
    /// is promoted once it holds the leader's log. A member at another address has its address
    /// updated; a member that already votes is left as it is. Forwarded to the leader.
    pub async fn add_voter(&self, id: NodeId, addr: &str) -> Result<(), RequestError> {
        self.change_membership(MembershipChange::Add {
            id,
            addr: addr.to_owned(),
            learner_only: false,
        })
        .await
    }

    /// Adds node `id`, reachable at `addr`, as a learner: it receives the log and serves Local
    /// reads (and forwards the others) but never votes, so it adds no latency to writes and no
    /// risk to the quorum. Adding a voter as a learner is [`RequestError::Refused`]: use
    /// [`Db::demote`].
    pub async fn add_learner(&self, id: NodeId, addr: &str) -> Result<(), RequestError> {
        self.change_membership(MembershipChange::Add {
            id,
            addr: addr.to_owned(),
            learner_only: true,
        })
        .await
    }

    /// Makes learner `id` a voter once it has caught up (a voter stays as it is).
    pub async fn promote(&self, id: NodeId) -> Result<(), RequestError> {
        self.change_membership(MembershipChange::Add {
            id,
            addr: String::new(),
            learner_only: false,
        })
        .await
    }

    /// Takes voter `id`'s vote away; it stays a member as a learner. A leader demoting itself
    /// hands its leadership to another voter first; the last voter cannot be demoted.
    pub async fn demote(&self, id: NodeId) -> Result<(), RequestError> {
        self.change_membership(MembershipChange::Demote(id)).await
    }

    /// Removes member `id` (voter or learner) from the cluster; an id that is not a member is
    /// [`RequestError::UnknownMember`], and the last voter cannot be removed.
    pub async fn remove_member(&self, id: NodeId) -> Result<(), RequestError> {
        self.change_membership(MembershipChange::Remove(id)).await
    }

    /// Hands the leadership to voter `to`, or, with `None`, to the voter whose log reaches
    /// furthest; returns once this node knows of a leader other than the old one.
    pub async fn transfer_leadership(&self, to: Option<NodeId>) -> Result<(), RequestError> {
        self.change_membership(MembershipChange::TransferLeadership(to))
            .await
    }

    /// Takes a snapshot of everything this node has applied, now, and returns it once its
    /// file is durable: one self-contained, checksummed file, kept (with the snapshots the
    /// retention policy keeps) until newer ones replace it.
    pub async fn snapshot(&self) -> Result<SnapshotInfo, RequestError> {
        self.engine
            .snapshot(self.deadline())
            .await
            .map_err(|e| self.stamp(e))
    }

    /// The snapshots this node keeps, newest first.
    pub fn snapshots(&self) -> Result<Vec<SnapshotInfo>, RequestError> {
        self.engine.snapshots()
    }

    /// Opens snapshot `id` for reading (to stream it elsewhere); the bytes are the snapshot
    /// file's, checksum included.
    pub fn open_snapshot(
        &self,
        id: &str,
    ) -> Result<(SnapshotInfo, Box<dyn Read + Send>), RequestError> {
        self.engine.open_snapshot(id)
    }

    /// Copies snapshot `id` to the file `path`, durably (written beside it and renamed into
    /// place once flushed), and verifies the copy's checksum before it is renamed.
    pub fn export_snapshot(&self, id: &str, path: &Path) -> Result<SnapshotInfo, RequestError> {
        let (info, mut reader) = self.engine.open_snapshot(id)?;
        crate::snapshots::export(&mut reader, path).map_err(|error| {
            RequestError::Internal(format!(
                "could not export snapshot {id} to {}: {error}",
                path.display()
            ))
        })?;
        Ok(info)
    }

    /// Replaces the whole cluster's state with the snapshot file at `path` (one exported by
    /// [`Db::export_snapshot`] or `dbadger snapshot save`, from this cluster or another):
    /// through the Raft log, so that every node switches at the same log index, atomically
    /// (readers see the old state or the new, never a mix). Every restored pair gets the
    /// restore's revision; the membership is left as it is. The file is verified first; a
    /// damaged one is [`RequestError::Refused`] and changes nothing. Survives a leader change
    /// in the middle. Runs from any node.
    pub async fn restore(&self, path: &Path) -> Result<RestoreInfo, RequestError> {
        let path = path.to_path_buf();
        let source = move || -> std::io::Result<Box<dyn Read + Send>> {
            Ok(Box::new(std::io::BufReader::new(std::fs::File::open(
                &path,
            )?)))
        };
        self.engine.restore(&source).await
    }

    /// [`Db::restore`] from snapshot `id`, one this node keeps ([`Db::snapshots`]).
    pub async fn restore_snapshot(&self, id: &str) -> Result<RestoreInfo, RequestError> {
        self.engine.open_snapshot(id)?;
        let engine = Arc::clone(&self.engine);
        let id = id.to_owned();
        let source = move || -> std::io::Result<Box<dyn Read + Send>> {
            engine
                .open_snapshot(&id)
                .map(|(_, reader)| reader)
                .map_err(|error| std::io::Error::other(error.to_string()))
        };
        self.engine.restore(&source).await
    }

    /// [`Db::restore`] from any source of snapshot bytes that can be read from the start more
    /// than once (it is read twice: once to verify it, once to send it).
    pub async fn restore_from(
        &self,
        source: &SnapshotSource<'_>,
    ) -> Result<RestoreInfo, RequestError> {
        self.engine.restore(source).await
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

    /// Whether this node has not failed, knows a leader and has caught up: it has applied
    /// everything it knows to be committed, and stays ready while writes in flight keep it
    /// at most [`crate::READY_APPLY_LAG`] entries behind (see [`NodeStatus::caught_up`]).
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
