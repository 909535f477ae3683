//! The record of every client operation: what was asked, of which node, when it was invoked and
//! when it returned (simulated time), and what came back.

use std::sync::{Arc, Mutex};

/// Whether a read had to be linearizable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Preference {
    /// Through the leader (ReadIndex): linearizable.
    Leader,
    /// The node's applied state: may be stale.
    Local,
}

/// What a compare-and-set requires of the key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Expected {
    /// The key holds this value.
    Value(Vec<u8>),
    /// The key's last write was at this revision (the key exists).
    Revision(u64),
    /// The key does not exist.
    Absent,
}

/// One operation as issued: every `Command` and `Query` form of the Kv service, and a restore.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Request {
    /// `get(key)`.
    Get {
        /// The key.
        key: Vec<u8>,
        /// Where it was read.
        preference: Preference,
    },
    /// `get_many(keys)`: one atomic read of several keys.
    GetMany {
        /// The keys, distinct.
        keys: Vec<Vec<u8>>,
        /// Where it was read.
        preference: Preference,
    },
    /// `get_prefix(prefix)`.
    GetPrefix {
        /// The prefix (empty: every key).
        prefix: Vec<u8>,
        /// Where it was read.
        preference: Preference,
    },
    /// `get_range(min, max)` with no count limit.
    GetRange {
        /// Inclusive lower bound (`None`: unbounded).
        min: Option<Vec<u8>>,
        /// Inclusive upper bound (`None`: unbounded).
        max: Option<Vec<u8>>,
        /// Where it was read.
        preference: Preference,
    },
    /// `set(key, value)`.
    Set {
        /// The key.
        key: Vec<u8>,
        /// The value (unique in the run).
        value: Vec<u8>,
    },
    /// `set_many(pairs)`, atomically.
    SetMany {
        /// The pairs, with distinct keys.
        pairs: Vec<(Vec<u8>, Vec<u8>)>,
    },
    /// `delete(key)`.
    Delete {
        /// The key.
        key: Vec<u8>,
    },
    /// `delete_many(keys)`, atomically.
    DeleteMany {
        /// The keys.
        keys: Vec<Vec<u8>>,
    },
    /// `delete_prefix(prefix)`.
    DeletePrefix {
        /// The prefix.
        prefix: Vec<u8>,
    },
    /// `delete_range(min, max)`.
    DeleteRange {
        /// Inclusive lower bound (`None`: unbounded).
        min: Option<Vec<u8>>,
        /// Inclusive upper bound (`None`: unbounded).
        max: Option<Vec<u8>>,
    },
    /// `delete_all()`.
    DeleteAll,
    /// `compare_and_set(key, expected, new)`.
    CompareAndSet {
        /// The key.
        key: Vec<u8>,
        /// The condition.
        expected: Expected,
        /// The value to store (unique in the run), or `None`: delete the key.
        new: Option<Vec<u8>>,
    },
    /// `Cluster.Restore` of an uploaded snapshot file holding `pairs`: a write of the whole
    /// key space (every workload key not in `pairs` is deleted).
    Restore {
        /// The key space after the restore, in ascending key order (values unique in the run).
        pairs: Vec<(Vec<u8>, Vec<u8>)>,
    },
}

impl Request {
    /// Whether the request may change the key space.
    pub fn is_write(&self) -> bool {
        !matches!(
            self,
            Request::Get { .. }
                | Request::GetMany { .. }
                | Request::GetPrefix { .. }
                | Request::GetRange { .. }
        )
    }

    /// The operation's name, as the Kv service calls it.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Get { .. } => "get",
            Request::GetMany { .. } => "get_many",
            Request::GetPrefix { .. } => "get_prefix",
            Request::GetRange { .. } => "get_range",
            Request::Set { .. } => "set",
            Request::SetMany { .. } => "set_many",
            Request::Delete { .. } => "delete",
            Request::DeleteMany { .. } => "delete_many",
            Request::DeletePrefix { .. } => "delete_prefix",
            Request::DeleteRange { .. } => "delete_range",
            Request::DeleteAll => "delete_all",
            Request::CompareAndSet { .. } => "compare_and_set",
            Request::Restore { .. } => "restore",
        }
    }

    /// The read preference of a read; `None` for a write.
    pub fn preference(&self) -> Option<Preference> {
        match self {
            Request::Get { preference, .. }
            | Request::GetMany { preference, .. }
            | Request::GetPrefix { preference, .. }
            | Request::GetRange { preference, .. } => Some(*preference),
            _ => None,
        }
    }
}

/// A read's answer: each key read with its value and revision (`None`: absent).
pub type ReadEntries = Vec<(Vec<u8>, Option<(Vec<u8>, u64)>)>;

/// What came back.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Reply {
    /// A read's answer: for each key read, its value and revision (`None`: absent).
    Read(ReadEntries),
    /// A write was applied at `revision` (its log index).
    Written {
        /// The log index of the write.
        revision: u64,
    },
    /// A compare-and-set was applied at `revision`.
    Swapped {
        /// Whether its condition held.
        succeeded: bool,
        /// The log index of the compare-and-set.
        revision: u64,
        /// The key's value and revision after it (`None`: absent); on failure, what made the
        /// condition false.
        current: Option<(Vec<u8>, u64)>,
    },
    /// It failed and certainly changed nothing: a read that failed, a failed connect, or a
    /// write the node reported with the outcome "not applied" (the checks hold it to that).
    Failed(String),
    /// A write the node reported with the outcome "unknown" (a timeout, a connection lost
    /// after sending, a leader that lost its quorum while holding it): it may or may not have
    /// happened.
    Unknown(String),
}

/// One operation from invocation to return.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Record {
    /// The client that issued it.
    pub client: u64,
    /// The index of the node it was sent to.
    pub node: usize,
    /// Which process of that node answered (for per-process checks of Local reads): its
    /// start count, known when the node did not restart during the call.
    pub process: Option<u64>,
    /// Simulated nanoseconds since the start, at invocation.
    pub invoke: u64,
    /// Simulated nanoseconds since the start, at return.
    pub complete: u64,
    /// The request.
    pub request: Request,
    /// The reply.
    pub reply: Reply,
}

/// Every record of a run, shared by the clients.
#[derive(Clone, Debug, Default)]
pub struct History {
    records: Arc<Mutex<Vec<Record>>>,
}

impl History {
    /// Appends a record.
    pub fn push(&self, record: Record) {
        self.records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(record);
    }

    /// A copy of every record, in completion order.
    pub fn records(&self) -> Vec<Record> {
        self.records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}
