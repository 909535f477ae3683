//! The binary encodings of dbadger-core: log entries, commands, responses, votes, log ids and
//! memberships. The Raft log, the network's entry transport and snapshots all use them.
//!
//! # Format
//!
//! Every top-level encoding starts with a one-byte format version (currently 1), followed by the
//! value: integers big-endian and fixed-width, byte strings and counts as a `u32` length and
//! the bytes, options and enumerations as a one-byte tag. A log entry is
//! `version | term u64 | leader node u64 | index u64 | payload tag | payload`, the payload a
//! command (tag, fields), a membership, or nothing for a blank entry.
//!
//! # Guarantees
//!
//! - Decoding never panics and rejects trailing bytes.
//! - Decoding allocates at most a small constant times the input length (at most 16x): every
//!   count is checked against the bytes left before anything is allocated for it.
//! - Each value has exactly one encoding: if `decode(bytes)` succeeds, `encode` of the result
//!   gives back `bytes` exactly. Non-canonical inputs (a boolean of 2, set members out of order)
//!   are rejected.
//!
//! Why not protobuf here: the log format must not change when the wire protocol evolves, must be
//! canonical (protobuf admits many encodings of one message), and must be decodable by the sans-IO
//! core without generated code. The gRPC layer carries these bytes opaquely.

mod command;
mod raft;
mod wire;

use wire::{Reader, Writer};

use crate::command::Command;
use crate::error::DecodeError;
use crate::query::Query;
use crate::raft_types::{LogEntry, LogId, Membership, SnapshotMeta, StoredMembership, Vote};
use crate::response::Response;

/// The format version this build writes, and the only one it reads.
pub const FORMAT_VERSION: u8 = 1;

fn encode(capacity: usize, body: impl FnOnce(&mut Writer)) -> Vec<u8> {
    let mut w = Writer::with_capacity(capacity + 1);
    w.u8(FORMAT_VERSION);
    body(&mut w);
    w.into_bytes()
}

fn decode<T>(
    bytes: &[u8],
    what: &'static str,
    body: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let mut r = Reader::new(bytes);
    let version = r.u8(what)?;
    if version != FORMAT_VERSION {
        return Err(DecodeError::UnsupportedVersion {
            what,
            version: u16::from(version),
        });
    }
    let value = body(&mut r)?;
    r.finish()?;
    Ok(value)
}

/// Encodes one Raft log entry.
pub fn encode_entry(entry: &LogEntry) -> Vec<u8> {
    let hint = match &entry.payload {
        openraft::EntryPayload::Normal(command) => command.payload_bytes() + 64,
        _ => 64,
    };
    encode(hint, |w| raft::write_entry(w, entry))
}

/// Decodes one Raft log entry.
pub fn decode_entry(bytes: &[u8]) -> Result<LogEntry, DecodeError> {
    decode(bytes, "log entry", raft::read_entry)
}

/// Encodes one command.
pub fn encode_command(command: &Command) -> Vec<u8> {
    encode(command.payload_bytes() + 16, |w| {
        command::write_command(w, command)
    })
}

/// Decodes one command.
pub fn decode_command(bytes: &[u8]) -> Result<Command, DecodeError> {
    decode(bytes, "command", command::read_command)
}

/// Encodes one query (reads are forwarded to the leader in this form).
pub fn encode_query(query: &Query) -> Vec<u8> {
    encode(64, |w| command::write_query(w, query))
}

/// Decodes one query.
pub fn decode_query(bytes: &[u8]) -> Result<Query, DecodeError> {
    decode(bytes, "query", command::read_query)
}

/// Encodes one response.
pub fn encode_response(response: &Response) -> Vec<u8> {
    encode(64, |w| command::write_response(w, response))
}

/// Decodes one response.
pub fn decode_response(bytes: &[u8]) -> Result<Response, DecodeError> {
    decode(bytes, "response", command::read_response)
}

/// Encodes a vote.
pub fn encode_vote(vote: &Vote) -> Vec<u8> {
    encode(17, |w| raft::write_vote(w, vote))
}

/// Decodes a vote.
pub fn decode_vote(bytes: &[u8]) -> Result<Vote, DecodeError> {
    decode(bytes, "vote", raft::read_vote)
}

/// Encodes an optional log id (applied, committed and purged positions are all optional).
pub fn encode_log_id(log_id: Option<&LogId>) -> Vec<u8> {
    encode(25, |w| w.optional(log_id, raft::write_log_id))
}

/// Decodes an optional log id.
pub fn decode_log_id(bytes: &[u8]) -> Result<Option<LogId>, DecodeError> {
    decode(bytes, "log id", |r| r.optional("log id", raft::read_log_id))
}

/// Encodes a membership.
pub fn encode_membership(membership: &Membership) -> Vec<u8> {
    encode(64, |w| raft::write_membership(w, membership))
}

/// Decodes a membership; openraft's validity rules are checked too.
pub fn decode_membership(bytes: &[u8]) -> Result<Membership, DecodeError> {
    decode(bytes, "membership", raft::read_membership)
}

/// Encodes a membership with the log id that introduced it.
pub fn encode_stored_membership(stored: &StoredMembership) -> Vec<u8> {
    encode(96, |w| raft::write_stored_membership(w, stored))
}

/// Decodes a membership with the log id that introduced it.
pub fn decode_stored_membership(bytes: &[u8]) -> Result<StoredMembership, DecodeError> {
    decode(bytes, "stored membership", raft::read_stored_membership)
}

/// Encodes what a snapshot covers: its last log id and membership.
pub fn encode_snapshot_meta(meta: &SnapshotMeta) -> Vec<u8> {
    encode(128, |w| {
        w.optional(meta.last_log_id.as_ref(), raft::write_log_id);
        raft::write_stored_membership(w, &meta.last_membership);
    })
}

/// Decodes what a snapshot covers.
pub fn decode_snapshot_meta(bytes: &[u8]) -> Result<SnapshotMeta, DecodeError> {
    decode(bytes, "snapshot meta", |r| {
        Ok(SnapshotMeta {
            last_log_id: r.optional("snapshot last log id", raft::read_log_id)?,
            last_membership: raft::read_stored_membership(r)?,
        })
    })
}

#[cfg(test)]
mod tests;
