//! The Raft protocol's rules a peer's message must keep before it reaches openraft: a message
//! that breaks one could only come from a faulty or hostile peer, and openraft (which trusts
//! its peers) would meet it with an assertion or a storage contract error, stopping the node.
//! Each rule is a pure function of the message and this node's committed log id; a broken
//! rule is a [`WireError::Rule`], answered with `INVALID_ARGUMENT`.

use dbadger_core::raft_types::{LogEntry, LogId, SnapshotMeta, Vote};

use crate::WireError;

fn broken(rule: String) -> WireError {
    WireError::Rule(rule)
}

/// A peer's log id at an index this node has committed cannot belong to a later leader than
/// the committed entry's: entries only grow in term along the log, and every leader holds
/// every committed entry.
fn agrees_with_committed(
    what: &str,
    log_id: &LogId,
    committed: Option<&LogId>,
) -> Result<(), WireError> {
    match committed {
        Some(committed) if log_id.index <= committed.index && log_id > committed => Err(broken(
            format!("{what} {log_id} contradicts this node's committed log at {committed}"),
        )),
        _ => Ok(()),
    }
}

/// No log id may belong to a later leader than the vote of the peer that sends it.
fn within_vote(what: &str, log_id: &LogId, vote: &Vote) -> Result<(), WireError> {
    if log_id.leader_id > vote.leader_id {
        return Err(broken(format!(
            "{what} {log_id} is beyond the sender's vote {vote}"
        )));
    }
    Ok(())
}

/// An append-entries request: its entries follow `prev_log_id` one index at a time, never go
/// back to an earlier leader, stay within the sender's vote, and `prev_log_id` agrees with
/// what this node has committed.
pub fn check_append(
    vote: &Vote,
    prev_log_id: Option<&LogId>,
    entries: &[LogEntry],
    leader_commit: Option<&LogId>,
    committed: Option<&LogId>,
) -> Result<(), WireError> {
    if let Some(prev) = prev_log_id {
        within_vote("prev_log_id", prev, vote)?;
        agrees_with_committed("prev_log_id", prev, committed)?;
    }
    if let Some(commit) = leader_commit {
        within_vote("leader_commit", commit, vote)?;
    }
    let mut previous = prev_log_id.copied();
    for entry in entries {
        let id = entry.log_id;
        let expected = previous.map_or(0, |p| p.index + 1);
        if id.index != expected {
            return Err(broken(format!(
                "entry {id} does not follow {} (expected index {expected})",
                previous.map_or_else(|| "the start of the log".to_owned(), |p| p.to_string())
            )));
        }
        if previous.is_some_and(|p| id.leader_id < p.leader_id) {
            return Err(broken(format!("entry {id} goes back to an earlier leader")));
        }
        within_vote("entry", &id, vote)?;
        previous = Some(id);
    }
    if let (Some(first), None) = (entries.first(), prev_log_id) {
        agrees_with_committed("entry", &first.log_id, committed)?;
    }
    Ok(())
}

/// A snapshot header: it covers at least one entry, its last log id is within the sender's
/// vote and agrees with this node's committed log, its membership is not newer than its last
/// entry, and its size is within `max_bytes`.
pub fn check_snapshot(
    vote: &Vote,
    meta: &SnapshotMeta,
    size: u64,
    max_bytes: u64,
    committed: Option<&LogId>,
) -> Result<(), WireError> {
    if size > max_bytes {
        return Err(broken(format!(
            "a snapshot of {size} bytes exceeds the limit of {max_bytes} bytes"
        )));
    }
    let last = meta
        .last_log_id
        .ok_or_else(|| broken("a snapshot must cover at least one entry".to_owned()))?;
    within_vote("snapshot last log id", &last, vote)?;
    agrees_with_committed("snapshot last log id", &last, committed)?;
    if committed.is_some_and(|committed| last > *committed && last.index <= committed.index) {
        return Err(broken(format!(
            "snapshot last log id {last} is newer than the committed log but not longer"
        )));
    }
    if let Some(membership_id) = meta.last_membership.log_id()
        && *membership_id > last
    {
        return Err(broken(format!(
            "the snapshot's membership at {membership_id} is newer than its last entry {last}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use dbadger_core::raft_types::{EntryPayload, LeaderId, StoredMembership};
    use openraft::vote::RaftLeaderId;

    use super::*;

    fn id(term: u64, index: u64) -> LogId {
        LogId::new(LeaderId::new(term, 2), index)
    }

    fn entry(term: u64, index: u64) -> LogEntry {
        LogEntry {
            log_id: id(term, index),
            payload: EntryPayload::Blank,
        }
    }

    fn vote(term: u64) -> Vote {
        Vote::new_committed(term, 2)
    }

    #[test]
    fn consecutive_entries_within_the_vote_pass() {
        let entries = [entry(3, 5), entry(3, 6), entry(4, 7)];
        assert!(check_append(&vote(4), Some(&id(3, 4)), &entries, Some(&id(3, 4)), None).is_ok());
        assert!(check_append(&vote(1), None, &[entry(1, 0)], None, None).is_ok());
        assert!(check_append(&vote(1), None, &[], None, Some(&id(1, 9))).is_ok());
    }

    #[test]
    fn holes_and_disorder_are_refused() {
        assert!(check_append(&vote(4), Some(&id(3, 4)), &[entry(3, 6)], None, None).is_err());
        assert!(check_append(&vote(4), None, &[entry(3, 1)], None, None).is_err());
        let backwards = [entry(4, 5), entry(3, 6)];
        assert!(check_append(&vote(4), Some(&id(3, 4)), &backwards, None, None).is_err());
    }

    #[test]
    fn nothing_may_be_beyond_the_vote() {
        assert!(check_append(&vote(4), Some(&id(5, 4)), &[], None, None).is_err());
        assert!(check_append(&vote(4), Some(&id(3, 4)), &[entry(5, 5)], None, None).is_err());
        assert!(check_append(&vote(4), None, &[], Some(&id(5, 1)), None).is_err());
    }

    #[test]
    fn the_committed_log_cannot_be_contradicted() {
        let committed = id(2, 10);
        assert!(check_append(&vote(4), Some(&id(3, 8)), &[], None, Some(&committed)).is_err());
        assert!(check_append(&vote(4), Some(&id(2, 8)), &[], None, Some(&committed)).is_ok());
        assert!(check_append(&vote(4), Some(&id(3, 11)), &[], None, Some(&committed)).is_ok());
    }

    fn meta(last: Option<LogId>) -> SnapshotMeta {
        SnapshotMeta {
            last_log_id: last,
            last_membership: StoredMembership::default(),
        }
    }

    #[test]
    fn snapshot_headers_follow_the_rules() {
        let max = 1 << 20;
        assert!(check_snapshot(&vote(4), &meta(Some(id(4, 50))), 10, max, None).is_ok());
        assert!(check_snapshot(&vote(4), &meta(Some(id(5, 50))), 10, max, None).is_err());
        assert!(check_snapshot(&vote(4), &meta(None), 10, max, None).is_err());
        assert!(check_snapshot(&vote(4), &meta(Some(id(4, 50))), max + 1, max, None).is_err());
        let committed = id(2, 60);
        assert!(
            check_snapshot(&vote(4), &meta(Some(id(3, 50))), 10, max, Some(&committed)).is_err()
        );
        assert!(
            check_snapshot(&vote(4), &meta(Some(id(3, 70))), 10, max, Some(&committed)).is_ok()
        );
    }
}
