//! The key-value rules: how a [`Command`] changes the key space and how a [`Query`] is answered,
//! written once over the storage traits. Every store, the reference model included, gets its
//! semantics from here.
//!
//! The rules are deterministic: the same command on the same state gives the same state and the
//! same response on every node. They do not validate (the node validates before proposing) and
//! they never panic on unvalidated input either.

use std::ops::{Bound, ControlFlow};

use crate::command::{Command, Expected, NewValue};
use crate::limits::Limits;
use crate::query::Query;
use crate::response::{KeyValue, Lookup, Response};
use crate::storage::{KvRead, KvWrite, StorageResult};

/// Applies `command` as the write at log index `revision` and returns its response.
pub fn apply(
    command: &Command,
    revision: u64,
    txn: &mut (impl KvWrite + ?Sized),
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
            let keys = prefix_keys(&*txn, prefix)?;
            for key in &keys {
                txn.remove(key)?;
            }
            Response::Deleted {
                revision,
                deleted: keys.len() as u64,
            }
        }
        Command::DeleteRange { min, max } => {
            let keys = range_keys(&*txn, min.as_deref(), max.as_deref())?;
            for key in &keys {
                txn.remove(key)?;
            }
            Response::DeletedKeys { revision, keys }
        }
        Command::DeleteAll => Response::Deleted {
            revision,
            deleted: txn.clear()?,
        },
        Command::CompareAndSet { key, expected, new } => {
            compare_and_set(txn, key, expected, new, revision)?
        }
    };
    Ok(response)
}

/// Answers `query` from `view`. Range answers stop at `limits.max_response_bytes` (but always
/// hold at least one entry) and then say `more`.
pub fn read(
    query: &Query,
    view: &(impl KvRead + ?Sized),
    limits: &Limits,
) -> StorageResult<Response> {
    let response = match query {
        Query::Get { key } => Response::Value(view.get(key)?.map(|found| KeyValue {
            key: key.clone(),
            value: found.value,
            revision: found.revision,
        })),
        Query::GetMany { keys } => {
            let mut lookups = Vec::with_capacity(keys.len());
            for key in keys {
                lookups.push(Lookup {
                    key: key.clone(),
                    found: view.get(key)?,
                });
            }
            Response::Values(lookups)
        }
        Query::GetPrefix { prefix } => {
            let mut collector = RangeCollector::new(0, limits.max_response_bytes);
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
            let mut collector = RangeCollector::new(*count, limits.max_response_bytes);
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

fn prefix_keys(view: &(impl KvRead + ?Sized), prefix: &[u8]) -> StorageResult<Vec<Vec<u8>>> {
    let mut keys = Vec::new();
    view.scan(
        Bound::Included(prefix),
        Bound::Unbounded,
        &mut |key, _, _| {
            if !key.starts_with(prefix) {
                return ControlFlow::Break(());
            }
            keys.push(key.to_vec());
            ControlFlow::Continue(())
        },
    )?;
    Ok(keys)
}

fn range_keys(
    view: &(impl KvRead + ?Sized),
    min: Option<&[u8]>,
    max: Option<&[u8]>,
) -> StorageResult<Vec<Vec<u8>>> {
    let mut keys = Vec::new();
    view.scan(bound(min), bound(max), &mut |key, _, _| {
        keys.push(key.to_vec());
        ControlFlow::Continue(())
    })?;
    Ok(keys)
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
        let size = key.len() + value.len();
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
