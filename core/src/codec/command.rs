//! The body encoding of [`Command`]s and [`Response`]s (without version byte; the framing in
//! `codec/mod.rs` adds it).

use super::wire::{Reader, Writer};
use crate::command::{Command, Expected, NewValue};
use crate::error::DecodeError;
use crate::query::Query;
use crate::response::{KeyValue, Lookup, Response, Versioned};
use crate::restore::RestoreStep;

const SET: u8 = 1;
const SET_MANY: u8 = 2;
const DELETE: u8 = 3;
const DELETE_MANY: u8 = 4;
const DELETE_PREFIX: u8 = 5;
const DELETE_RANGE: u8 = 6;
const DELETE_ALL: u8 = 7;
const COMPARE_AND_SET: u8 = 8;
const RESTORE: u8 = 9;

const RESTORE_BEGIN: u8 = 0;
const RESTORE_PIECE: u8 = 1;
const RESTORE_COMMIT: u8 = 2;
const RESTORE_ABORT: u8 = 3;

const EXPECT_VALUE: u8 = 0;
const EXPECT_REVISION: u8 = 1;
const EXPECT_ABSENT: u8 = 2;

const NEW_VALUE: u8 = 0;
const NEW_DELETE: u8 = 1;

/// Smallest encodings, used to bound counts before allocating: a byte string is at least its
/// 4-byte length, a pair two of them, a `KeyValue` two strings and a revision.
const MIN_BYTES: usize = 4;
const MIN_PAIR: usize = 2 * MIN_BYTES;
const MIN_KEY_VALUE: usize = 2 * MIN_BYTES + 8;
const MIN_LOOKUP: usize = MIN_BYTES + 1;

pub(crate) fn write_command(w: &mut Writer, command: &Command) {
    match command {
        Command::Set { key, value } => {
            w.u8(SET);
            w.bytes(key);
            w.bytes(value);
        }
        Command::SetMany { pairs } => {
            w.u8(SET_MANY);
            w.count(pairs.len());
            for (key, value) in pairs {
                w.bytes(key);
                w.bytes(value);
            }
        }
        Command::Delete { key } => {
            w.u8(DELETE);
            w.bytes(key);
        }
        Command::DeleteMany { keys } => {
            w.u8(DELETE_MANY);
            write_byte_strings(w, keys);
        }
        Command::DeletePrefix { prefix } => {
            w.u8(DELETE_PREFIX);
            w.bytes(prefix);
        }
        Command::DeleteRange { min, max } => {
            w.u8(DELETE_RANGE);
            w.optional(min.as_ref(), |w, b| w.bytes(b));
            w.optional(max.as_ref(), |w, b| w.bytes(b));
        }
        Command::DeleteAll => w.u8(DELETE_ALL),
        Command::Restore(step) => {
            w.u8(RESTORE);
            match step {
                RestoreStep::Begin { bytes, pieces, crc } => {
                    w.u8(RESTORE_BEGIN);
                    w.u64(*bytes);
                    w.u64(*pieces);
                    w.u32(*crc);
                }
                RestoreStep::Piece { begin, seq, data } => {
                    w.u8(RESTORE_PIECE);
                    w.u64(*begin);
                    w.u64(*seq);
                    w.bytes(data);
                }
                RestoreStep::Commit { begin } => {
                    w.u8(RESTORE_COMMIT);
                    w.u64(*begin);
                }
                RestoreStep::Abort { begin } => {
                    w.u8(RESTORE_ABORT);
                    w.u64(*begin);
                }
            }
        }
        Command::CompareAndSet { key, expected, new } => {
            w.u8(COMPARE_AND_SET);
            w.bytes(key);
            match expected {
                Expected::Value(value) => {
                    w.u8(EXPECT_VALUE);
                    w.bytes(value);
                }
                Expected::Revision(revision) => {
                    w.u8(EXPECT_REVISION);
                    w.u64(*revision);
                }
                Expected::Absent => w.u8(EXPECT_ABSENT),
            }
            match new {
                NewValue::Value(value) => {
                    w.u8(NEW_VALUE);
                    w.bytes(value);
                }
                NewValue::Delete => w.u8(NEW_DELETE),
            }
        }
    }
}

pub(crate) fn read_command(r: &mut Reader<'_>) -> Result<Command, DecodeError> {
    let command = match r.u8("command tag")? {
        SET => Command::Set {
            key: r.bytes("key")?,
            value: r.bytes("value")?,
        },
        SET_MANY => {
            let count = r.count(MIN_PAIR, "set_many pairs")?;
            let mut pairs = Vec::with_capacity(count);
            for _ in 0..count {
                pairs.push((r.bytes("key")?, r.bytes("value")?));
            }
            Command::SetMany { pairs }
        }
        DELETE => Command::Delete {
            key: r.bytes("key")?,
        },
        DELETE_MANY => Command::DeleteMany {
            keys: read_byte_strings(r, "keys")?,
        },
        DELETE_PREFIX => Command::DeletePrefix {
            prefix: r.bytes("prefix")?,
        },
        DELETE_RANGE => Command::DeleteRange {
            min: r.optional("range min", |r| r.bytes("range min"))?,
            max: r.optional("range max", |r| r.bytes("range max"))?,
        },
        DELETE_ALL => Command::DeleteAll,
        RESTORE => Command::Restore(match r.u8("restore step")? {
            RESTORE_BEGIN => RestoreStep::Begin {
                bytes: r.u64("restore bytes")?,
                pieces: r.u64("restore pieces")?,
                crc: r.u32("restore crc")?,
            },
            RESTORE_PIECE => RestoreStep::Piece {
                begin: r.u64("restore begin")?,
                seq: r.u64("restore piece number")?,
                data: r.bytes("restore piece")?,
            },
            RESTORE_COMMIT => RestoreStep::Commit {
                begin: r.u64("restore begin")?,
            },
            RESTORE_ABORT => RestoreStep::Abort {
                begin: r.u64("restore begin")?,
            },
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "restore step",
                    tag,
                });
            }
        }),
        COMPARE_AND_SET => {
            let key = r.bytes("key")?;
            let expected = match r.u8("cas expectation")? {
                EXPECT_VALUE => Expected::Value(r.bytes("expected value")?),
                EXPECT_REVISION => Expected::Revision(r.u64("expected revision")?),
                EXPECT_ABSENT => Expected::Absent,
                tag => {
                    return Err(DecodeError::UnknownTag {
                        what: "cas expectation",
                        tag,
                    });
                }
            };
            let new = match r.u8("cas new value")? {
                NEW_VALUE => NewValue::Value(r.bytes("new value")?),
                NEW_DELETE => NewValue::Delete,
                tag => {
                    return Err(DecodeError::UnknownTag {
                        what: "cas new value",
                        tag,
                    });
                }
            };
            Command::CompareAndSet { key, expected, new }
        }
        tag => {
            return Err(DecodeError::UnknownTag {
                what: "command",
                tag,
            });
        }
    };
    Ok(command)
}

const GET: u8 = 1;
const GET_MANY: u8 = 2;
const GET_PREFIX: u8 = 3;
const GET_RANGE: u8 = 4;

pub(crate) fn write_query(w: &mut Writer, query: &Query) {
    match query {
        Query::Get { key } => {
            w.u8(GET);
            w.bytes(key);
        }
        Query::GetMany { keys } => {
            w.u8(GET_MANY);
            write_byte_strings(w, keys);
        }
        Query::GetPrefix { prefix } => {
            w.u8(GET_PREFIX);
            w.bytes(prefix);
        }
        Query::GetRange { min, max, count } => {
            w.u8(GET_RANGE);
            w.optional(min.as_ref(), |w, b| w.bytes(b));
            w.optional(max.as_ref(), |w, b| w.bytes(b));
            w.u64(*count);
        }
    }
}

pub(crate) fn read_query(r: &mut Reader<'_>) -> Result<Query, DecodeError> {
    Ok(match r.u8("query tag")? {
        GET => Query::Get {
            key: r.bytes("key")?,
        },
        GET_MANY => Query::GetMany {
            keys: read_byte_strings(r, "keys")?,
        },
        GET_PREFIX => Query::GetPrefix {
            prefix: r.bytes("prefix")?,
        },
        GET_RANGE => Query::GetRange {
            min: r.optional("range min", |r| r.bytes("range min"))?,
            max: r.optional("range max", |r| r.bytes("range max"))?,
            count: r.u64("range count")?,
        },
        tag => return Err(DecodeError::UnknownTag { what: "query", tag }),
    })
}

const EMPTY: u8 = 0;
const WRITTEN: u8 = 1;
const DELETED: u8 = 2;
const DELETED_KEYS: u8 = 3;
const CAS_RESULT: u8 = 4;
const VALUE: u8 = 5;
const VALUES: u8 = 6;
const RANGE: u8 = 7;
/// `DELETED_KEYS` with the full count and `more` (the key list is bounded by the response
/// limit). Written from this version on; the older tag still decodes, as a complete list.
const DELETED_KEYS_BOUNDED: u8 = 8;
const RESTORED: u8 = 9;
const RESTORE_FAILED: u8 = 10;

pub(crate) fn write_response(w: &mut Writer, response: &Response) {
    match response {
        Response::Empty => w.u8(EMPTY),
        Response::Written { revision } => {
            w.u8(WRITTEN);
            w.u64(*revision);
        }
        Response::Deleted { revision, deleted } => {
            w.u8(DELETED);
            w.u64(*revision);
            w.u64(*deleted);
        }
        Response::DeletedKeys {
            revision,
            keys,
            deleted,
            more,
        } => {
            w.u8(DELETED_KEYS_BOUNDED);
            w.u64(*revision);
            write_byte_strings(w, keys);
            w.u64(*deleted);
            w.bool(*more);
        }
        Response::CompareAndSet {
            revision,
            succeeded,
            current,
        } => {
            w.u8(CAS_RESULT);
            w.u64(*revision);
            w.bool(*succeeded);
            w.optional(current.as_ref(), write_key_value);
        }
        Response::Value(entry) => {
            w.u8(VALUE);
            w.optional(entry.as_ref(), write_key_value);
        }
        Response::Values(lookups) => {
            w.u8(VALUES);
            w.count(lookups.len());
            for lookup in lookups {
                w.bytes(&lookup.key);
                w.optional(lookup.found.as_ref(), |w, found| {
                    w.bytes(&found.value);
                    w.u64(found.revision);
                });
            }
        }
        Response::Restored { revision, keys } => {
            w.u8(RESTORED);
            w.u64(*revision);
            w.u64(*keys);
        }
        Response::RestoreFailed { reason } => {
            w.u8(RESTORE_FAILED);
            w.bytes(reason.as_bytes());
        }
        Response::Range { entries, more } => {
            w.u8(RANGE);
            w.count(entries.len());
            for entry in entries {
                write_key_value(w, entry);
            }
            w.bool(*more);
        }
    }
}

pub(crate) fn read_response(r: &mut Reader<'_>) -> Result<Response, DecodeError> {
    let response = match r.u8("response tag")? {
        EMPTY => Response::Empty,
        WRITTEN => Response::Written {
            revision: r.u64("revision")?,
        },
        DELETED => Response::Deleted {
            revision: r.u64("revision")?,
            deleted: r.u64("deleted count")?,
        },
        DELETED_KEYS => {
            let revision = r.u64("revision")?;
            let keys = read_byte_strings(r, "deleted keys")?;
            Response::DeletedKeys {
                revision,
                deleted: keys.len() as u64,
                more: false,
                keys,
            }
        }
        RESTORED => Response::Restored {
            revision: r.u64("revision")?,
            keys: r.u64("restored keys")?,
        },
        RESTORE_FAILED => Response::RestoreFailed {
            reason: String::from_utf8_lossy(&r.bytes("restore failure")?).into_owned(),
        },
        DELETED_KEYS_BOUNDED => Response::DeletedKeys {
            revision: r.u64("revision")?,
            keys: read_byte_strings(r, "deleted keys")?,
            deleted: r.u64("deleted count")?,
            more: r.bool("more")?,
        },
        CAS_RESULT => Response::CompareAndSet {
            revision: r.u64("revision")?,
            succeeded: r.bool("cas succeeded")?,
            current: r.optional("cas current", read_key_value)?,
        },
        VALUE => Response::Value(r.optional("entry", read_key_value)?),
        VALUES => {
            let count = r.count(MIN_LOOKUP, "lookups")?;
            let mut lookups = Vec::with_capacity(count);
            for _ in 0..count {
                let key = r.bytes("key")?;
                let found = r.optional("lookup", |r| {
                    Ok(Versioned {
                        value: r.bytes("value")?,
                        revision: r.u64("revision")?,
                    })
                })?;
                lookups.push(Lookup { key, found });
            }
            Response::Values(lookups)
        }
        RANGE => {
            let count = r.count(MIN_KEY_VALUE, "range entries")?;
            let mut entries = Vec::with_capacity(count);
            for _ in 0..count {
                entries.push(read_key_value(r)?);
            }
            Response::Range {
                entries,
                more: r.bool("more")?,
            }
        }
        tag => {
            return Err(DecodeError::UnknownTag {
                what: "response",
                tag,
            });
        }
    };
    Ok(response)
}

fn write_key_value(w: &mut Writer, entry: &KeyValue) {
    w.bytes(&entry.key);
    w.bytes(&entry.value);
    w.u64(entry.revision);
}

fn read_key_value(r: &mut Reader<'_>) -> Result<KeyValue, DecodeError> {
    Ok(KeyValue {
        key: r.bytes("key")?,
        value: r.bytes("value")?,
        revision: r.u64("revision")?,
    })
}

fn write_byte_strings(w: &mut Writer, strings: &[Vec<u8>]) {
    w.count(strings.len());
    for string in strings {
        w.bytes(string);
    }
}

fn read_byte_strings(r: &mut Reader<'_>, what: &'static str) -> Result<Vec<Vec<u8>>, DecodeError> {
    let count = r.count(MIN_BYTES, what)?;
    let mut strings = Vec::with_capacity(count);
    for _ in 0..count {
        strings.push(r.bytes(what)?);
    }
    Ok(strings)
}
