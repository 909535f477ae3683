//! Reads: every question about the key space is one [`Query`], answered from a node's applied
//! state under a [`ReadPreference`].

/// Which state a read observes.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Hash)]
pub enum ReadPreference {
    /// Linearizable: the leader confirms its leadership with a quorum (ReadIndex) and the read
    /// waits until that index is applied. Forwarded to the leader from a follower.
    #[default]
    Leader,
    /// This node's applied state, without any round trip: fast, possibly stale.
    Local,
}

/// A read of the key space.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Query {
    /// One key.
    Get {
        /// The key.
        key: Vec<u8>,
    },
    /// Several keys; the answer has one entry per key, in order.
    GetMany {
        /// The keys.
        keys: Vec<Vec<u8>>,
    },
    /// Every key starting with `prefix`, in key order (cut short only by the response-size
    /// limit, which sets `more`).
    GetPrefix {
        /// The prefix; empty matches every key.
        prefix: Vec<u8>,
    },
    /// Keys with `min <= key <= max`, in key order.
    GetRange {
        /// Inclusive lower bound; `None` is unbounded.
        min: Option<Vec<u8>>,
        /// Inclusive upper bound; `None` is unbounded.
        max: Option<Vec<u8>>,
        /// At most this many entries; 0 means no limit.
        count: u64,
    },
}

impl Query {
    /// A short, stable name for logs and metrics labels.
    pub fn name(&self) -> &'static str {
        match self {
            Query::Get { .. } => "get",
            Query::GetMany { .. } => "get_many",
            Query::GetPrefix { .. } => "get_prefix",
            Query::GetRange { .. } => "get_range",
        }
    }
}
