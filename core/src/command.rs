//! Writes: every change to the key space travels through the Raft log as one [`Command`].

use std::fmt;

use crate::restore::RestoreStep;

/// A write to the key space. Each command is one Raft log entry and applies atomically: either
/// all of its effects are visible or none are.
///
/// Build commands through [`crate::limits::Limits::validate_command`]-checked paths (the `Db`
/// API does); the state-machine rules assume a validated command but never panic on one that
/// is not.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Command {
    /// Stores `value` under `key`.
    Set {
        /// The key, 1..=511 bytes.
        key: Vec<u8>,
        /// The value, up to the configured maximum.
        value: Vec<u8>,
    },
    /// Stores every pair atomically; a key given twice ends with its last value.
    SetMany {
        /// The pairs, in request order.
        pairs: Vec<(Vec<u8>, Vec<u8>)>,
    },
    /// Removes `key`; removing a missing key succeeds.
    Delete {
        /// The key to remove.
        key: Vec<u8>,
    },
    /// Removes every listed key atomically.
    DeleteMany {
        /// The keys to remove.
        keys: Vec<Vec<u8>>,
    },
    /// Removes every key starting with `prefix` atomically. An empty prefix matches every key.
    DeletePrefix {
        /// The prefix.
        prefix: Vec<u8>,
    },
    /// Removes every key with `min <= key <= max` atomically and reports the removed keys.
    DeleteRange {
        /// Inclusive lower bound; `None` is unbounded.
        min: Option<Vec<u8>>,
        /// Inclusive upper bound; `None` is unbounded.
        max: Option<Vec<u8>>,
    },
    /// Removes every key.
    DeleteAll,
    /// Changes `key` only if its current state matches `expected`.
    CompareAndSet {
        /// The key.
        key: Vec<u8>,
        /// The condition on the key's current state.
        expected: Expected,
        /// The change made when the condition holds.
        new: NewValue,
    },
    /// One step of a restore of the whole key space from a snapshot file (see
    /// [`crate::restore`]). Proposed by `Db::restore`, never by a client request.
    Restore(RestoreStep),
}

/// The condition of a [`Command::CompareAndSet`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Expected {
    /// The key exists and holds exactly this value.
    Value(Vec<u8>),
    /// The key exists and its last write applied at this revision.
    Revision(u64),
    /// The key does not exist.
    Absent,
}

/// The change a successful [`Command::CompareAndSet`] makes.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum NewValue {
    /// Store this value.
    Value(Vec<u8>),
    /// Remove the key.
    Delete,
}

impl Command {
    /// A short, stable name for logs and metrics labels.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Set { .. } => "set",
            Command::SetMany { .. } => "set_many",
            Command::Delete { .. } => "delete",
            Command::DeleteMany { .. } => "delete_many",
            Command::DeletePrefix { .. } => "delete_prefix",
            Command::DeleteRange { .. } => "delete_range",
            Command::DeleteAll => "delete_all",
            Command::CompareAndSet { .. } => "compare_and_set",
            Command::Restore(_) => "restore",
        }
    }

    /// Builds a [`Command::SetMany`] from parallel key and value lists, as DBadger's API takes
    /// them.
    pub fn set_many(
        keys: Vec<Vec<u8>>,
        values: Vec<Vec<u8>>,
    ) -> Result<Command, crate::error::InvalidArgument> {
        if keys.len() != values.len() {
            return Err(crate::error::InvalidArgument::LengthMismatch {
                keys: keys.len(),
                values: values.len(),
            });
        }
        Ok(Command::SetMany {
            pairs: keys.into_iter().zip(values).collect(),
        })
    }

    /// The number of keys the command names explicitly (range and prefix forms count as one).
    pub fn operation_count(&self) -> usize {
        match self {
            Command::SetMany { pairs } => pairs.len(),
            Command::DeleteMany { keys } => keys.len(),
            _ => 1,
        }
    }

    /// The number of key and value bytes the command carries.
    pub fn payload_bytes(&self) -> usize {
        match self {
            Command::Set { key, value } => key.len() + value.len(),
            Command::SetMany { pairs } => pairs.iter().map(|(k, v)| k.len() + v.len()).sum(),
            Command::Delete { key } => key.len(),
            Command::DeleteMany { keys } => keys.iter().map(Vec::len).sum(),
            Command::DeletePrefix { prefix } => prefix.len(),
            Command::DeleteRange { min, max } => {
                min.as_ref().map_or(0, Vec::len) + max.as_ref().map_or(0, Vec::len)
            }
            Command::DeleteAll => 0,
            Command::Restore(step) => step.payload_bytes(),
            Command::CompareAndSet { key, expected, new } => {
                let expected_len = match expected {
                    Expected::Value(v) => v.len(),
                    Expected::Revision(_) | Expected::Absent => 0,
                };
                let new_len = match new {
                    NewValue::Value(v) => v.len(),
                    NewValue::Delete => 0,
                };
                key.len() + expected_len + new_len
            }
        }
    }
}

/// Log-friendly rendering: operation name and sizes, never the (possibly secret) bytes.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}(ops={}, bytes={})",
            self.name(),
            self.operation_count(),
            self.payload_bytes()
        )
    }
}
