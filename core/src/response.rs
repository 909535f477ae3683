//! Answers to commands and queries.

/// One stored pair with the revision (log index) of its last write.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct KeyValue {
    /// The key.
    pub key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
    /// The log index of the write that stored this value.
    pub revision: u64,
}

/// A value and its revision, as a store holds it under a key.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Versioned {
    /// The value.
    pub value: Vec<u8>,
    /// The log index of the write that stored this value.
    pub revision: u64,
}

/// The answer for one key of a [`crate::Query::GetMany`]: the key and, if it exists, its value.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Lookup {
    /// The requested key.
    pub key: Vec<u8>,
    /// The stored value, or `None` when the key does not exist.
    pub found: Option<Versioned>,
}

/// The result of a command or query.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Response {
    /// Log entries that carry no command (blank and membership entries) answer this.
    Empty,
    /// A `Set` or `SetMany` applied at `revision`.
    Written {
        /// The log index at which the write applied.
        revision: u64,
    },
    /// A `Delete`, `DeleteMany`, `DeletePrefix` or `DeleteAll` applied at `revision`.
    Deleted {
        /// The log index at which the delete applied.
        revision: u64,
        /// How many existing keys it removed.
        deleted: u64,
    },
    /// A `DeleteRange` applied at `revision` and removed `deleted` keys, listed in key order
    /// up to the response limit.
    DeletedKeys {
        /// The log index at which the delete applied.
        revision: u64,
        /// The removed keys, in key order; cut short at the response limit (then `more`).
        keys: Vec<Vec<u8>>,
        /// How many keys it removed, all of them.
        deleted: u64,
        /// True when `keys` lists fewer keys than were removed.
        more: bool,
    },
    /// A `CompareAndSet` applied at `revision`.
    CompareAndSet {
        /// The log index at which the command applied (whether or not it succeeded).
        revision: u64,
        /// Whether the condition held and the change was made.
        succeeded: bool,
        /// The key's entry after the command; `None` if the key does not exist.
        current: Option<KeyValue>,
    },
    /// A `Get`: the entry, or `None` when the key does not exist.
    Value(Option<KeyValue>),
    /// A `GetMany`: one lookup per requested key, in request order.
    Values(Vec<Lookup>),
    /// A restore's commit replaced the key space with the snapshot's `keys` pairs, each at
    /// `revision`.
    Restored {
        /// The log index of the commit: every restored pair's revision.
        revision: u64,
        /// How many pairs the key space holds now.
        keys: u64,
    },
    /// A restore step could not be applied (the same on every node): nothing changed.
    RestoreFailed {
        /// Why, in a few words.
        reason: String,
    },
    /// A `GetPrefix` or `GetRange`: entries in key order.
    Range {
        /// The entries.
        entries: Vec<KeyValue>,
        /// True when the answer was cut short by `count` or by the response-size limit.
        more: bool,
    },
}

impl Response {
    /// The revision (log index) at which a write applied; `None` for read answers and entries
    /// without a command.
    pub fn revision(&self) -> Option<u64> {
        match self {
            Response::Written { revision }
            | Response::Deleted { revision, .. }
            | Response::DeletedKeys { revision, .. }
            | Response::CompareAndSet { revision, .. }
            | Response::Restored { revision, .. } => Some(*revision),
            Response::Empty
            | Response::Value(_)
            | Response::Values(_)
            | Response::Range { .. }
            | Response::RestoreFailed { .. } => None,
        }
    }
}
