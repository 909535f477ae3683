//! The body encoding of Raft types: log ids, votes, memberships and log entries.

use std::collections::{BTreeMap, BTreeSet};

use openraft::vote::RaftLeaderId;

use super::command::{read_command, write_command};
use super::wire::{Reader, Writer};
use crate::error::DecodeError;
use crate::raft_types::{
    EntryPayload, LeaderId, LogEntry, LogId, Membership, Node, NodeId, StoredMembership, Vote,
};

const PAYLOAD_BLANK: u8 = 0;
const PAYLOAD_NORMAL: u8 = 1;
const PAYLOAD_MEMBERSHIP: u8 = 2;

/// A node id and its smallest address: 8 bytes and a 4-byte length.
const MIN_NODE: usize = 8 + 4;
/// A voter set with no members is refused by openraft, but its count still takes 4 bytes.
const MIN_CONFIG: usize = 4;

pub(crate) fn write_log_id(w: &mut Writer, log_id: &LogId) {
    w.u64(log_id.leader_id.term);
    w.u64(log_id.leader_id.node_id);
    w.u64(log_id.index);
}

pub(crate) fn read_log_id(r: &mut Reader<'_>) -> Result<LogId, DecodeError> {
    let term = r.u64("log id term")?;
    let node_id = r.u64("log id node")?;
    let index = r.u64("log id index")?;
    Ok(LogId::new(LeaderId::new(term, node_id), index))
}

pub(crate) fn write_vote(w: &mut Writer, vote: &Vote) {
    w.u64(vote.leader_id.term);
    w.u64(vote.leader_id.node_id);
    w.bool(vote.committed);
}

pub(crate) fn read_vote(r: &mut Reader<'_>) -> Result<Vote, DecodeError> {
    let term = r.u64("vote term")?;
    let node_id = r.u64("vote node")?;
    let committed = r.bool("vote committed")?;
    Ok(if committed {
        Vote::new_committed(term, node_id)
    } else {
        Vote::new(term, node_id)
    })
}

pub(crate) fn write_membership(w: &mut Writer, membership: &Membership) {
    let configs = membership.get_joint_config();
    w.count(configs.len());
    for config in configs {
        w.count(config.len());
        for id in config {
            w.u64(*id);
        }
    }
    let nodes: Vec<(&NodeId, &Node)> = membership.nodes().collect();
    w.count(nodes.len());
    for (id, node) in nodes {
        w.u64(*id);
        w.bytes(node.addr.as_bytes());
    }
}

pub(crate) fn read_membership(r: &mut Reader<'_>) -> Result<Membership, DecodeError> {
    let config_count = r.count(MIN_CONFIG, "membership configs")?;
    let mut configs = Vec::with_capacity(config_count);
    for _ in 0..config_count {
        let voter_count = r.count(8, "voter set")?;
        let mut voters = BTreeSet::new();
        for _ in 0..voter_count {
            let id = r.u64("voter id")?;
            // Sets are written in ascending order; anything else would re-encode differently.
            if voters.last().is_some_and(|last| *last >= id) {
                return Err(DecodeError::NonCanonical {
                    what: "voter set order",
                });
            }
            voters.insert(id);
        }
        configs.push(voters);
    }
    let node_count = r.count(MIN_NODE, "membership nodes")?;
    let mut nodes = BTreeMap::new();
    for _ in 0..node_count {
        let id = r.u64("node id")?;
        if nodes.last_key_value().is_some_and(|(last, _)| *last >= id) {
            return Err(DecodeError::NonCanonical { what: "node order" });
        }
        let addr =
            String::from_utf8(r.bytes("node address")?).map_err(|_| DecodeError::InvalidUtf8 {
                what: "node address",
            })?;
        nodes.insert(id, Node { addr });
    }
    Membership::new(configs, nodes).map_err(|error| DecodeError::InvalidMembership {
        reason: error.to_string(),
    })
}

pub(crate) fn write_stored_membership(w: &mut Writer, stored: &StoredMembership) {
    w.optional(stored.log_id().as_ref(), write_log_id);
    write_membership(w, stored.membership());
}

pub(crate) fn read_stored_membership(r: &mut Reader<'_>) -> Result<StoredMembership, DecodeError> {
    let log_id = r.optional("membership log id", read_log_id)?;
    let membership = read_membership(r)?;
    Ok(StoredMembership::new(log_id, membership))
}

pub(crate) fn write_entry(w: &mut Writer, entry: &LogEntry) {
    write_log_id(w, &entry.log_id);
    match &entry.payload {
        EntryPayload::Blank => w.u8(PAYLOAD_BLANK),
        EntryPayload::Normal(command) => {
            w.u8(PAYLOAD_NORMAL);
            write_command(w, command);
        }
        EntryPayload::Membership(membership) => {
            w.u8(PAYLOAD_MEMBERSHIP);
            write_membership(w, membership);
        }
    }
}

pub(crate) fn read_entry(r: &mut Reader<'_>) -> Result<LogEntry, DecodeError> {
    let log_id = read_log_id(r)?;
    let payload = match r.u8("entry payload tag")? {
        PAYLOAD_BLANK => EntryPayload::Blank,
        PAYLOAD_NORMAL => EntryPayload::Normal(read_command(r)?),
        PAYLOAD_MEMBERSHIP => EntryPayload::Membership(read_membership(r)?),
        tag => {
            return Err(DecodeError::UnknownTag {
                what: "entry payload",
                tag,
            });
        }
    };
    Ok(LogEntry { log_id, payload })
}
