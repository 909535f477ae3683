//! What [`crate::Db`]'s operations answer, beyond plain revisions and entries.

use dbadger_core::KeyValue;

/// The outcome of a delete: the revision it applied at and how many keys it removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deleted {
    /// The log index at which the delete applied.
    pub revision: u64,
    /// How many existing keys it removed.
    pub deleted: u64,
}

/// The outcome of `delete_range`: how many keys it removed, and the removed keys in order up
/// to the response limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletedKeys {
    /// The log index at which the delete applied.
    pub revision: u64,
    /// The removed keys, in order; cut short at the response limit (then `more`).
    pub keys: Vec<Vec<u8>>,
    /// How many keys it removed, all of them.
    pub deleted: u64,
    /// True when `keys` lists fewer keys than were removed.
    pub more: bool,
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
