//! Request validation: every limit a request must respect, each violation a typed
//! [`InvalidArgument`], checked before anything reaches the log.

use crate::command::{Command, Expected, NewValue};
use crate::error::InvalidArgument;
use crate::query::Query;

/// LMDB's largest key. Keys are 1..=511 bytes everywhere, including the in-memory store, so a
/// cluster never accepts a key that its disk could not hold.
pub const MAX_KEY_BYTES: usize = 511;

/// The limits one request must respect. Every node of a cluster should use the same limits:
/// validation happens on the node that receives the request, before it is proposed.
///
/// The defaults keep any accepted request, and any answer, inside one gRPC message of 4 MiB (the
/// tonic default), with room for framing, so no valid request can be refused by the transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest value, in bytes. Default 1 MiB: large enough for documents and small blobs,
    /// small enough that a log entry never dominates a replication batch or a snapshot chunk
    /// (etcd draws the line at 1.5 MiB per request for the same reason).
    pub max_value_bytes: usize,
    /// The most keys one `set_many`, `delete_many` or `get_many` may name. Default 10,000.
    pub max_batch_operations: usize,
    /// The most key and value bytes one request may carry. Default 3 MiB.
    pub max_request_bytes: usize,
    /// The most key and value bytes one range or prefix answer may carry before it is cut short
    /// with `more = true`. Default 3 MiB. At least one entry is always returned.
    pub max_response_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_value_bytes: 1 << 20,
            max_batch_operations: 10_000,
            max_request_bytes: 3 << 20,
            max_response_bytes: 3 << 20,
        }
    }
}

impl Limits {
    /// Checks one key: 1..=511 bytes.
    pub fn validate_key(&self, key: &[u8]) -> Result<(), InvalidArgument> {
        if key.is_empty() {
            return Err(InvalidArgument::EmptyKey);
        }
        check_bound(key)
    }

    /// Checks one value against `max_value_bytes`.
    pub fn validate_value(&self, value: &[u8]) -> Result<(), InvalidArgument> {
        if value.len() > self.max_value_bytes {
            return Err(InvalidArgument::ValueTooLarge {
                len: value.len(),
                max: self.max_value_bytes,
            });
        }
        Ok(())
    }

    /// Checks a whole command: every key and value, the operation count and the total size.
    pub fn validate_command(&self, command: &Command) -> Result<(), InvalidArgument> {
        self.validate_batch(command.operation_count(), command.payload_bytes())?;
        match command {
            Command::Set { key, value } => {
                self.validate_key(key)?;
                self.validate_value(value)
            }
            Command::SetMany { pairs } => pairs.iter().try_for_each(|(key, value)| {
                self.validate_key(key)?;
                self.validate_value(value)
            }),
            Command::Delete { key } => self.validate_key(key),
            Command::DeleteMany { keys } => keys.iter().try_for_each(|key| self.validate_key(key)),
            Command::DeletePrefix { prefix } => check_bound(prefix),
            Command::DeleteRange { min, max } => check_range(min.as_deref(), max.as_deref()),
            Command::DeleteAll | Command::Restore(_) => Ok(()),
            Command::CompareAndSet { key, expected, new } => {
                self.validate_key(key)?;
                if let Expected::Value(value) = expected {
                    self.validate_value(value)?;
                }
                if let NewValue::Value(value) = new {
                    self.validate_value(value)?;
                }
                Ok(())
            }
        }
    }

    /// Checks a query: every key or bound, and the number of keys.
    pub fn validate_query(&self, query: &Query) -> Result<(), InvalidArgument> {
        match query {
            Query::Get { key } => self.validate_key(key),
            Query::GetMany { keys } => {
                let bytes = keys.iter().map(Vec::len).sum();
                self.validate_batch(keys.len(), bytes)?;
                keys.iter().try_for_each(|key| self.validate_key(key))
            }
            Query::GetPrefix { prefix } => check_bound(prefix),
            Query::GetRange { min, max, .. } => check_range(min.as_deref(), max.as_deref()),
        }
    }

    fn validate_batch(&self, operations: usize, bytes: usize) -> Result<(), InvalidArgument> {
        if operations > self.max_batch_operations {
            return Err(InvalidArgument::TooManyOperations {
                count: operations,
                max: self.max_batch_operations,
            });
        }
        if bytes > self.max_request_bytes {
            return Err(InvalidArgument::RequestTooLarge {
                bytes,
                max: self.max_request_bytes,
            });
        }
        Ok(())
    }
}

/// Prefixes and range bounds may be empty (matching from the very first key) but, like keys,
/// no longer than [`MAX_KEY_BYTES`].
fn check_bound(bound: &[u8]) -> Result<(), InvalidArgument> {
    if bound.len() > MAX_KEY_BYTES {
        return Err(InvalidArgument::KeyTooLong {
            len: bound.len(),
            max: MAX_KEY_BYTES,
        });
    }
    Ok(())
}

fn check_range(min: Option<&[u8]>, max: Option<&[u8]>) -> Result<(), InvalidArgument> {
    min.map_or(Ok(()), check_bound)?;
    max.map_or(Ok(()), check_bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each limit accepts its boundary value and rejects one past it.
    #[test]
    fn limits_accept_the_boundary_and_reject_one_past_it() {
        let limits = Limits {
            max_value_bytes: 8,
            max_batch_operations: 2,
            max_request_bytes: 20,
            max_response_bytes: 100,
        };
        assert_eq!(limits.validate_key(b""), Err(InvalidArgument::EmptyKey));
        assert_eq!(limits.validate_key(&[1; MAX_KEY_BYTES]), Ok(()));
        assert_eq!(
            limits.validate_key(&[1; MAX_KEY_BYTES + 1]),
            Err(InvalidArgument::KeyTooLong { len: 512, max: 511 })
        );
        assert_eq!(limits.validate_value(&[0; 8]), Ok(()));
        assert_eq!(
            limits.validate_value(&[0; 9]),
            Err(InvalidArgument::ValueTooLarge { len: 9, max: 8 })
        );
        let two = Command::set_many(vec![b"a".to_vec(), b"b".to_vec()], vec![vec![], vec![]]);
        assert_eq!(
            limits.validate_command(&two.expect("equal lengths")),
            Ok(())
        );
        let three = Command::DeleteMany {
            keys: vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()],
        };
        assert_eq!(
            limits.validate_command(&three),
            Err(InvalidArgument::TooManyOperations { count: 3, max: 2 })
        );
        let at_size = Command::Set {
            key: vec![1; 12],
            value: vec![2; 8],
        };
        assert_eq!(limits.validate_command(&at_size), Ok(()));
        let over_size = Command::Set {
            key: vec![1; 13],
            value: vec![2; 8],
        };
        assert_eq!(
            limits.validate_command(&over_size),
            Err(InvalidArgument::RequestTooLarge { bytes: 21, max: 20 })
        );
    }

    /// `set_many` with unequal lists is refused with both lengths.
    #[test]
    fn set_many_length_mismatch_is_typed() {
        let result = Command::set_many(vec![b"a".to_vec()], vec![]);
        assert_eq!(
            result,
            Err(InvalidArgument::LengthMismatch { keys: 1, values: 0 })
        );
    }

    /// Compare-and-set checks its expected and new values against the value limit.
    #[test]
    fn compare_and_set_values_are_limited() {
        let limits = Limits {
            max_value_bytes: 4,
            ..Limits::default()
        };
        let command = Command::CompareAndSet {
            key: b"k".to_vec(),
            expected: Expected::Value(vec![0; 5]),
            new: NewValue::Delete,
        };
        assert_eq!(
            limits.validate_command(&command),
            Err(InvalidArgument::ValueTooLarge { len: 5, max: 4 })
        );
        let command = Command::CompareAndSet {
            key: b"k".to_vec(),
            expected: Expected::Absent,
            new: NewValue::Value(vec![0; 5]),
        };
        assert!(limits.validate_command(&command).is_err());
    }

    /// Prefixes and range bounds may be empty but not longer than a key.
    #[test]
    fn bounds_may_be_empty_but_not_too_long() {
        let limits = Limits::default();
        assert_eq!(
            limits.validate_query(&Query::GetPrefix { prefix: vec![] }),
            Ok(())
        );
        let long = Query::GetRange {
            min: None,
            max: Some(vec![0; 512]),
            count: 0,
        };
        assert!(matches!(
            limits.validate_query(&long),
            Err(InvalidArgument::KeyTooLong { .. })
        ));
    }
}
