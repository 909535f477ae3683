//! The key-value rules: how a [`Command`] changes the key space and how a [`Query`] is answered,
//! written once over the storage traits. Every store, the reference model included, gets its
//! semantics from here.
//!
//! The rules are deterministic: the same command on the same state gives the same state and the
//! same response on every node. They do not validate (the node validates before proposing) and
//! they never panic on unvalidated input either.

use std::ops::{Bound, ControlFlow};

use crate::answer_size::{ANSWER_OVERHEAD_BYTES, key_bytes, key_value_bytes, lookup_bytes};
use crate::command::{Command, Expected, NewValue};
use crate::error::StorageError;
use crate::limits::Limits;
use crate::query::Query;
use crate::response::{KeyValue, Lookup, Response};
use crate::storage::{KvRead, KvWrite, StateWrite, StorageResult};

/// How many keys a range or prefix delete removes per scan, so that it never holds every key
/// of a large range in memory at once.
const DELETE_CHUNK_KEYS: usize = 1024;

/// Why a query could not be answered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The answer would exceed the response limit and has no `more` to cut it short with.
    #[error("the answer of at least {bytes} bytes exceeds the response limit of {max} bytes")]
    ResponseTooLarge {
        /// The encoded size reached when the limit was crossed.
        bytes: usize,
        /// The configured response limit.
        max: usize,
    },
}

/// The bytes an answer's repeated part may take: the response limit less room for the fixed
/// fields.
fn entry_budget(limits: &Limits) -> usize {
    limits
        .max_response_bytes
        .saturating_sub(ANSWER_OVERHEAD_BYTES)
}

/// Applies `command` as the write at log index `revision` and returns its response. An answer
/// that lists keys (`DeleteRange`) lists them up to `limits.max_response_bytes` and then says
/// `more`; the write itself is never cut short.
pub fn apply(
    command: &Command,
    revision: u64,
    txn: &mut (impl StateWrite + ?Sized),
    limits: &Limits,
) -> StorageResult<Response> {
    let response = match command {
        Command::Set { key, value } => {
            txn.put(key, value, revision)?;
            Response::Written { revision }
        }
        Command::SetMany { pairs } => {
            for (key, value) in pairs {
                txn.put(key, value, revision)?;
            }
            Response::Written { revision }
        }
        Command::Delete { key } => Response::Deleted {
            revision,
            deleted: u64::from(txn.remove(key)?),
        },
        Command::DeleteMany { keys } => {
            let mut deleted = 0;
            for key in keys {
                deleted += u64::from(txn.remove(key)?);
            }
            Response::Deleted { revision, deleted }
        }
        Command::DeletePrefix { prefix } => {
            let mut removed = KeyList::counting_only();
            delete_in_chunks(
                txn,
                Bound::Included(prefix),
                Bound::Unbounded,
                prefix,
                &mut removed,
            )?;
            Response::Deleted {
                revision,
                deleted: removed.count,
            }
        }
        Command::DeleteRange { min, max } => {
            let mut removed = KeyList::within(entry_budget(limits));
            delete_in_chunks(
                txn,
                bound(min.as_deref()),
                bound(max.as_deref()),
                b"",
                &mut removed,
            )?;
            Response::DeletedKeys {
                revision,
                deleted: removed.count,
                more: removed.more,
                keys: removed.keys,
            }
        }
        Command::DeleteAll => Response::Deleted {
            revision,
            deleted: txn.clear()?,
        },
        Command::CompareAndSet { key, expected, new } => {
            compare_and_set(txn, key, expected, new, revision)?
        }
        Command::Restore(step) => crate::restore::apply(step, revision, txn)?,
    };
    Ok(response)
}

/// Answers `query` from `view`. Every answer is bounded by its encoded size: range answers stop
/// at `limits.max_response_bytes` (but always hold at least one entry) and then say `more`; a
/// `GetMany` answer that would not fit is [`ReadError::ResponseTooLarge`].
pub fn read(
    query: &Query,
    view: &(impl KvRead + ?Sized),
    limits: &Limits,
) -> Result<Response, ReadError> {
    let response = match query {
        Query::Get { key } => Response::Value(view.get(key)?.map(|found| KeyValue {
            key: key.clone(),
            value: found.value,
            revision: found.revision,
        })),
        Query::GetMany { keys } => {
            let budget = entry_budget(limits);
            let mut bytes = 0;
            let mut lookups = Vec::with_capacity(keys.len());
            for key in keys {
                let found = view.get(key)?;
                bytes += found
                    .as_ref()
                    .map_or(lookup_bytes(key.len(), 0, 0), |found| {
                        lookup_bytes(key.len(), found.value.len(), found.revision)
                    });
                if bytes > budget {
                    return Err(ReadError::ResponseTooLarge {
                        bytes: bytes + ANSWER_OVERHEAD_BYTES,
                        max: limits.max_response_bytes,
                    });
                }
                lookups.push(Lookup {
                    key: key.clone(),
                    found,
                });
            }
            Response::Values(lookups)
        }
        Query::GetPrefix { prefix } => {
            let mut collector = RangeCollector::new(0, entry_budget(limits));
            view.scan(
                Bound::Included(prefix),
                Bound::Unbounded,
                &mut |key, value, revision| {
                    if !key.starts_with(prefix) {
                        return ControlFlow::Break(());
                    }
                    collector.offer(key, value, revision)
                },
            )?;
            collector.into_response()
        }
        Query::GetRange { min, max, count } => {
            let mut collector = RangeCollector::new(*count, entry_budget(limits));
            view.scan(
                bound(min.as_deref()),
                bound(max.as_deref()),
                &mut |key, value, revision| collector.offer(key, value, revision),
            )?;
            collector.into_response()
        }
    };
    Ok(response)
}

fn compare_and_set(
    txn: &mut (impl KvWrite + ?Sized),
    key: &[u8],
    expected: &Expected,
    new: &NewValue,
    revision: u64,
) -> StorageResult<Response> {
    let current = txn.get(key)?;
    let holds = match (expected, &current) {
        (Expected::Absent, found) => found.is_none(),
        (Expected::Value(value), Some(found)) => found.value == *value,
        (Expected::Revision(wanted), Some(found)) => found.revision == *wanted,
        (Expected::Value(_) | Expected::Revision(_), None) => false,
    };
    let after = if holds {
        match new {
            NewValue::Value(value) => {
                txn.put(key, value, revision)?;
                Some(KeyValue {
                    key: key.to_vec(),
                    value: value.clone(),
                    revision,
                })
            }
            NewValue::Delete => {
                txn.remove(key)?;
                None
            }
        }
    } else {
        current.map(|found| KeyValue {
            key: key.to_vec(),
            value: found.value,
            revision: found.revision,
        })
    };
    Ok(Response::CompareAndSet {
        revision,
        succeeded: holds,
        current: after,
    })
}

fn bound(limit: Option<&[u8]>) -> Bound<&[u8]> {
    limit.map_or(Bound::Unbounded, Bound::Included)
}

/// The keys a delete removed: all counted, listed up to a byte budget of their encoded size.
struct KeyList {
    keys: Vec<Vec<u8>>,
    count: u64,
    budget: usize,
    bytes: usize,
    more: bool,
}

impl KeyList {
    fn within(budget: usize) -> KeyList {
        KeyList {
            keys: Vec::new(),
            count: 0,
            budget,
            bytes: 0,
            more: false,
        }
    }

    fn counting_only() -> KeyList {
        KeyList::within(0)
    }

    fn record(&mut self, key: &[u8]) {
        self.count += 1;
        let size = key_bytes(key.len());
        if !self.more && self.bytes + size <= self.budget {
            self.bytes += size;
            self.keys.push(key.to_vec());
        } else {
            self.more = true;
        }
    }
}

/// Removes every key within the bounds that starts with `prefix`, [`DELETE_CHUNK_KEYS`] at a
/// time (a scan cannot remove as it goes), recording each in `removed`.
fn delete_in_chunks(
    txn: &mut (impl KvWrite + ?Sized),
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
    prefix: &[u8],
    removed: &mut KeyList,
) -> StorageResult<()> {
    let mut resume: Option<Vec<u8>> = None;
    loop {
        let mut chunk = Vec::with_capacity(DELETE_CHUNK_KEYS.min(64));
        let from = resume.as_deref().map_or(lower, Bound::Excluded);
        txn.scan(from, upper, &mut |key, _, _| {
            if !key.starts_with(prefix) {
                return ControlFlow::Break(());
            }
            chunk.push(key.to_vec());
            if chunk.len() == DELETE_CHUNK_KEYS {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        for key in &chunk {
            txn.remove(key)?;
            removed.record(key);
        }
        if chunk.len() < DELETE_CHUNK_KEYS {
            return Ok(());
        }
        resume = chunk.pop();
    }
}

/// Gathers range entries up to a count and a byte budget, remembering whether it had to stop
/// while entries remained.
struct RangeCollector {
    entries: Vec<KeyValue>,
    count_limit: u64,
    byte_budget: usize,
    bytes: usize,
    more: bool,
}

impl RangeCollector {
    fn new(count_limit: u64, byte_budget: usize) -> RangeCollector {
        RangeCollector {
            entries: Vec::new(),
            count_limit,
            byte_budget,
            bytes: 0,
            more: false,
        }
    }

    fn offer(&mut self, key: &[u8], value: &[u8], revision: u64) -> ControlFlow<()> {
        let size = key_value_bytes(key.len(), value.len(), revision);
        let count_reached = self.count_limit != 0 && self.entries.len() as u64 >= self.count_limit;
        let budget_reached = !self.entries.is_empty() && self.bytes + size > self.byte_budget;
        if count_reached || budget_reached {
            self.more = true;
            return ControlFlow::Break(());
        }
        self.bytes += size;
        self.entries.push(KeyValue {
            key: key.to_vec(),
            value: value.to_vec(),
            revision,
        });
        ControlFlow::Continue(())
    }

    fn into_response(self) -> Response {
        Response::Range {
            entries: self.entries,
            more: self.more,
        }
    }
}

#[cfg(test)]
mod tests;
