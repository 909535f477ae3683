//! The naive model of docs/design.md §3: the key-value semantics written a second time, as plainly as
//! possible (linear filters over a sorted map), independently of [`crate::rules`]. Property
//! tests and fuzz targets check the rules against it.

use std::collections::BTreeMap;

use crate::answer_size;
use crate::command::{Command, Expected, NewValue};
use crate::limits::Limits;
use crate::query::Query;
use crate::response::{KeyValue, Lookup, Response, Versioned};
use crate::restore::RestoreStep;

/// The obvious, slow semantics of docs/design.md §3, written independently of the rules: linear
/// filters over a sorted map.
#[derive(Default)]
pub struct Model {
    map: BTreeMap<Vec<u8>, (Vec<u8>, u64)>,
    staged: Option<StagedRestore>,
}

/// A restore in progress, as plainly as possible: the announced file and the bytes so far.
struct StagedRestore {
    begin: u64,
    bytes: u64,
    pieces: u64,
    crc: u32,
    received: Vec<u8>,
    next: u64,
    broken: bool,
}

impl Model {
    fn restore(&mut self, step: &RestoreStep, revision: u64) -> Response {
        let failed = |reason: &str| Response::RestoreFailed {
            reason: reason.to_owned(),
        };
        match step {
            RestoreStep::Begin { bytes, pieces, crc } => {
                self.staged = Some(StagedRestore {
                    begin: revision,
                    bytes: *bytes,
                    pieces: *pieces,
                    crc: *crc,
                    received: Vec::new(),
                    next: 1,
                    broken: false,
                });
                Response::Written { revision }
            }
            RestoreStep::Piece { begin, seq, data } => {
                let Some(staged) = self.staged.as_mut().filter(|s| s.begin == *begin) else {
                    return failed("no such restore");
                };
                if *seq < staged.next {
                    return Response::Written { revision };
                }
                if staged.broken || *seq != staged.next || *seq > staged.pieces {
                    staged.broken = true;
                    return failed("out of order");
                }
                staged.received.extend_from_slice(data);
                staged.next += 1;
                Response::Written { revision }
            }
            RestoreStep::Abort { begin } => {
                if self.staged.as_ref().is_some_and(|s| s.begin == *begin) {
                    self.staged = None;
                }
                Response::Written { revision }
            }
            RestoreStep::Commit { begin } => {
                let Some(staged) = self.staged.take().filter(|s| s.begin == *begin) else {
                    return failed("no such restore");
                };
                let whole = !staged.broken
                    && staged.next == staged.pieces + 1
                    && staged.received.len() as u64 == staged.bytes
                    && crc32fast::hash(&staged.received) == staged.crc;
                let parsed = whole
                    .then(|| {
                        crate::snapshot_format::SnapshotReader::open(staged.received.as_slice())
                    })
                    .and_then(Result::ok)
                    .and_then(|(mut reader, _)| {
                        let mut pairs = Vec::new();
                        loop {
                            match reader.next_record() {
                                Ok(Some(record)) => pairs.push((record.key, record.value)),
                                Ok(None) => return Some(pairs),
                                Err(_) => return None,
                            }
                        }
                    });
                match parsed {
                    Some(pairs) => {
                        self.map = pairs
                            .into_iter()
                            .map(|(key, value)| (key, (value, revision)))
                            .collect();
                        Response::Restored {
                            revision,
                            keys: self.map.len() as u64,
                        }
                    }
                    None => failed("not a whole snapshot"),
                }
            }
        }
    }

    /// Every pair: key to (value, revision).
    pub fn pairs(&self) -> &BTreeMap<Vec<u8>, (Vec<u8>, u64)> {
        &self.map
    }

    /// The entry stored under `key`.
    pub fn entry(&self, key: &[u8]) -> Option<KeyValue> {
        self.map.get(key).map(|(value, revision)| KeyValue {
            key: key.to_vec(),
            value: value.clone(),
            revision: *revision,
        })
    }

    /// Applies `command` as the write at `revision`; answers that list keys list them up to
    /// `limits.max_response_bytes` of encoded size.
    pub fn apply(&mut self, command: &Command, revision: u64, limits: &Limits) -> Response {
        match command {
            Command::Set { key, value } => {
                self.map.insert(key.clone(), (value.clone(), revision));
                Response::Written { revision }
            }
            Command::SetMany { pairs } => {
                for (key, value) in pairs {
                    self.map.insert(key.clone(), (value.clone(), revision));
                }
                Response::Written { revision }
            }
            Command::Delete { key } => Response::Deleted {
                revision,
                deleted: u64::from(self.map.remove(key).is_some()),
            },
            Command::DeleteMany { keys } => {
                let deleted = keys
                    .iter()
                    .filter(|key| self.map.remove(*key).is_some())
                    .count();
                Response::Deleted {
                    revision,
                    deleted: deleted as u64,
                }
            }
            Command::DeletePrefix { prefix } => {
                let before = self.map.len();
                self.map.retain(|key, _| !key.starts_with(prefix));
                Response::Deleted {
                    revision,
                    deleted: (before - self.map.len()) as u64,
                }
            }
            Command::DeleteRange { min, max } => {
                let keys: Vec<Vec<u8>> = self
                    .map
                    .keys()
                    .filter(|key| in_range(key, min.as_deref(), max.as_deref()))
                    .cloned()
                    .collect();
                for key in &keys {
                    self.map.remove(key);
                }
                let budget = entry_budget(limits);
                let mut bytes = 0;
                let listed: Vec<Vec<u8>> = keys
                    .iter()
                    .take_while(|key| {
                        bytes += answer_size::key_bytes(key.len());
                        bytes <= budget
                    })
                    .cloned()
                    .collect();
                Response::DeletedKeys {
                    revision,
                    deleted: keys.len() as u64,
                    more: listed.len() < keys.len(),
                    keys: listed,
                }
            }
            Command::DeleteAll => {
                let deleted = self.map.len() as u64;
                self.map.clear();
                Response::Deleted { revision, deleted }
            }
            Command::Restore(step) => self.restore(step, revision),
            Command::CompareAndSet { key, expected, new } => {
                let current = self.entry(key);
                let holds = match expected {
                    Expected::Value(value) => current.as_ref().is_some_and(|c| c.value == *value),
                    Expected::Revision(wanted) => {
                        current.as_ref().is_some_and(|c| c.revision == *wanted)
                    }
                    Expected::Absent => current.is_none(),
                };
                if holds {
                    match new {
                        NewValue::Value(value) => {
                            self.map.insert(key.clone(), (value.clone(), revision));
                        }
                        NewValue::Delete => {
                            self.map.remove(key);
                        }
                    }
                }
                Response::CompareAndSet {
                    revision,
                    succeeded: holds,
                    current: self.entry(key),
                }
            }
        }
    }

    /// Answers `query` under `limits`; `None` when the answer cannot fit the response limit
    /// (a `GetMany` has no `more` to cut it short with).
    pub fn read(&self, query: &Query, limits: &Limits) -> Option<Response> {
        Some(match query {
            Query::Get { key } => Response::Value(self.entry(key)),
            Query::GetMany { keys } => {
                let lookups: Vec<Lookup> = keys
                    .iter()
                    .map(|key| Lookup {
                        key: key.clone(),
                        found: self.map.get(key).map(|(value, revision)| Versioned {
                            value: value.clone(),
                            revision: *revision,
                        }),
                    })
                    .collect();
                let bytes: usize = lookups
                    .iter()
                    .map(|lookup| match &lookup.found {
                        Some(found) => answer_size::lookup_bytes(
                            lookup.key.len(),
                            found.value.len(),
                            found.revision,
                        ),
                        None => answer_size::lookup_bytes(lookup.key.len(), 0, 0),
                    })
                    .sum();
                if bytes > entry_budget(limits) {
                    return None;
                }
                Response::Values(lookups)
            }
            Query::GetPrefix { prefix } => self.cut(|key| key.starts_with(prefix), 0, limits),
            Query::GetRange { min, max, count } => self.cut(
                |key| in_range(key, min.as_deref(), max.as_deref()),
                *count,
                limits,
            ),
        })
    }

    /// All matching entries, then cut at `count` or where the byte budget would be exceeded
    /// (keeping at least one entry).
    fn cut(&self, matches: impl Fn(&[u8]) -> bool, count: u64, limits: &Limits) -> Response {
        let all: Vec<KeyValue> = self
            .map
            .keys()
            .filter(|key| matches(key))
            .filter_map(|key| self.entry(key))
            .collect();
        let mut kept = Vec::new();
        let mut bytes = 0;
        for entry in &all {
            let size =
                answer_size::key_value_bytes(entry.key.len(), entry.value.len(), entry.revision);
            let full = count != 0 && kept.len() as u64 == count;
            let over = !kept.is_empty() && bytes + size > entry_budget(limits);
            if full || over {
                break;
            }
            bytes += size;
            kept.push(entry.clone());
        }
        let more = kept.len() < all.len();
        Response::Range {
            entries: kept,
            more,
        }
    }
}

/// The bytes the repeated part of an answer may take.
fn entry_budget(limits: &Limits) -> usize {
    limits
        .max_response_bytes
        .saturating_sub(answer_size::ANSWER_OVERHEAD_BYTES)
}

fn in_range(key: &[u8], min: Option<&[u8]>, max: Option<&[u8]>) -> bool {
    min.is_none_or(|min| key >= min) && max.is_none_or(|max| key <= max)
}
