//! Leaving the cluster on a graceful stop, and the mark a node that left leaves in its data
//! directory so that it is never started again under its old identity.
//!
//! A node that left is out of the membership, but its log still holds the memberships it was
//! part of: started again on the same data, it would believe it is a member and disturb the
//! cluster with elections. So leaving writes `LEFT` into the data directory. Started with
//! `--join`, such a node discards its old data and joins as a new member with a new id (openraft
//! must never see a node id again once it was removed); started any other way, it refuses to
//! start and says so.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use dbadger_core::raft_types::NodeId;
use dbadger_core::storage::StateMachineStore;
use dbadger_core::{Outcome, RequestError};
use openraft::async_runtime::watch::WatchReceiver;
use tokio::time::Instant;

use crate::membership_plan::MembershipChange;
use crate::node::Node;

/// The name of the mark a node that left its cluster writes into its data directory.
pub const LEFT_MARK: &str = "LEFT";

/// What leaving takes, from this node's view of the membership.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Leave {
    /// Not a member (never joined, or already removed): nothing to do.
    NotMember,
    /// The only member: a cluster of one cannot leave itself.
    Alone,
    /// Ask the leader to remove this node.
    Remove,
}

/// What leaving takes for node `me`, given the members (id, voter) it knows of.
pub(crate) fn leave_plan(me: NodeId, members: &[(NodeId, bool)]) -> Leave {
    if !members.iter().any(|(id, _)| *id == me) {
        return Leave::NotMember;
    }
    if members.len() == 1 {
        return Leave::Alone;
    }
    Leave::Remove
}

/// Whom a node that restarted at another address asks to record it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Announce<'a> {
    /// Nobody: it knows no member and has no seed.
    Nobody,
    /// It proposes the change itself: it leads, or it is the only member it knows of.
    Itself,
    /// These addresses, one after another, which pass the request to the leader.
    Through(Vec<&'a str>),
}

/// Whom to ask to record this node's address: the `others` members its log knows of; when it
/// knows of none and is no member itself, its join `seeds` (without its own address `addr`).
pub(crate) fn announce_plan<'a>(
    is_leader: bool,
    member: bool,
    others: Vec<&'a str>,
    seeds: &'a [String],
    addr: &str,
) -> Announce<'a> {
    if !member && others.is_empty() {
        let seeds: Vec<&str> = seeds
            .iter()
            .map(String::as_str)
            .filter(|seed| *seed != addr)
            .collect();
        return if seeds.is_empty() {
            Announce::Nobody
        } else {
            Announce::Through(seeds)
        };
    }
    if is_leader || others.is_empty() {
        return Announce::Itself;
    }
    Announce::Through(others)
}

impl<S: StateMachineStore> Node<S> {
    /// Removes this node from the cluster (a leader hands its leadership to another voter
    /// first). Returns whether it left: `false` when it was not a member or is the only one.
    pub(crate) async fn leave(&self, deadline: Instant) -> Result<bool, RequestError> {
        let members: Vec<(NodeId, bool)> = crate::node::Engine::status(self)
            .members
            .iter()
            .map(|(id, _, voter)| (*id, *voter))
            .collect();
        match leave_plan(self.id, &members) {
            Leave::NotMember | Leave::Alone => Ok(false),
            Leave::Remove => self
                .change_membership_routed(MembershipChange::Remove(self.id), deadline, true)
                .await
                .map(|()| true),
        }
    }
}

impl<S: StateMachineStore> Node<S> {
    /// After a restart with another advertised address (or a recovery, which records the
    /// configured one), asks the leader to record the address this node really advertises,
    /// retrying until it is recorded or the node stops. A member whose address is unchanged
    /// has nothing to announce.
    ///
    /// The request only ever changes the address of a node that is a member (`RecordAddress`,
    /// never an add): a node removed while it was down, or one whose own log does not show it
    /// as a member yet (it restarted before the entry that added it reached it), is not added
    /// by its announcement. The leader still sends to the old address, so this node may not
    /// know who leads: it asks the members it knows of, which pass the request on, or, when
    /// its log names none (it had heard from a leader but received no entry yet), its join
    /// `seeds`; a leader (of others, or alone after a recovery) records its own address, as
    /// the others would forward to the old one. A node that is not a member asks again now
    /// and then, as the entry that adds it may still be on its way.
    pub(crate) async fn announce_address(&self, seeds: Vec<String>) {
        loop {
            let status = crate::node::Engine::status(self);
            if status.failure.is_some() || status.state == "shutdown" {
                return;
            }
            if self.committed_address().as_deref() == Some(self.addr.as_str()) {
                return;
            }
            let member = status.members.iter().any(|(id, _, _)| *id == self.id);
            let others: Vec<&str> = status
                .members
                .iter()
                .filter(|(id, _, _)| *id != self.id)
                .map(|(_, addr, _)| addr.as_str())
                .collect();
            let recorded = match announce_plan(status.is_leader, member, others, &seeds, &self.addr)
            {
                Announce::Nobody => return,
                Announce::Itself => {
                    let change = MembershipChange::RecordAddress {
                        id: self.id,
                        addr: self.addr.clone(),
                    };
                    let deadline = Instant::now() + self.request_timeout;
                    self.change_membership_routed(change, deadline, true)
                        .await
                        .is_ok()
                }
                Announce::Through(peers) => self.record_address_through(&peers).await,
            };
            if recorded {
                tracing::info!(addr = %self.addr, "the cluster recorded this node's address");
                return;
            }
            tokio::time::sleep(self.patience).await;
        }
    }

    /// This node's address in the last membership this node knows to be committed. The latest
    /// membership in its log is not enough: an address change this node appended while it led
    /// may never commit (it lost the leadership first), and the cluster then still sends to
    /// the old address.
    fn committed_address(&self) -> Option<String> {
        let committed = self
            .raft
            .metrics()
            .borrow_watched()
            .committed_membership_config
            .clone();
        committed
            .membership()
            .get_node(&self.id)
            .map(|node| node.addr.clone())
    }

    /// Asks `others`, one after another, to have the leader record this node's address.
    async fn record_address_through(&self, others: &[&str]) -> bool {
        for member in others {
            match self
                .forwarder
                .record_address(member, self.id, &self.addr, self.request_timeout)
                .await
            {
                Ok(()) => return true,
                Err(error) => {
                    tracing::debug!(error = %error.error, via = %member, "the address of this node was not recorded");
                }
            }
        }
        false
    }
}

fn mark_path(data_dir: &Path) -> PathBuf {
    data_dir.join(LEFT_MARK)
}

/// Records, durably, that node `id` left its cluster.
pub(crate) fn mark_left(data_dir: &Path, id: NodeId) -> io::Result<()> {
    let path = mark_path(data_dir);
    let mut file = File::create(&path)?;
    writeln!(
        file,
        "node {id} left its cluster; start with --join to join again as a new node"
    )?;
    file.sync_all()?;
    File::open(data_dir)?.sync_all()
}

/// Whether the data directory holds the mark of a node that left.
pub(crate) fn has_left(data_dir: &Path) -> bool {
    mark_path(data_dir).exists()
}

/// Discards the data of a node that left, so that it can join again as a new node: the store's
/// files first, the mark last (a crash in between leaves the mark, and the next start discards
/// again).
pub(crate) fn discard_left_node(data_dir: &Path) -> io::Result<()> {
    dbadger_lmdb::LmdbStore::destroy(data_dir)?;
    fs::remove_file(mark_path(data_dir))?;
    File::open(data_dir)?.sync_all()
}

/// The refusal of a node that left and was started without `--join`.
pub(crate) fn left_error(data_dir: &Path) -> String {
    format!(
        "the node in {} left its cluster; start it with --join to join again as a new node",
        data_dir.display()
    )
}

/// A leave that failed, for the log line of a stop that goes on without it.
pub(crate) fn leave_failed(error: &RequestError) -> String {
    match error.outcome() {
        Outcome::NotApplied => format!("could not leave the cluster: {error}"),
        Outcome::Unknown => format!("may not have left the cluster: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaving_needs_membership_and_company() {
        assert_eq!(leave_plan(1, &[]), Leave::NotMember);
        assert_eq!(leave_plan(1, &[(2, true), (3, true)]), Leave::NotMember);
        assert_eq!(leave_plan(1, &[(1, true)]), Leave::Alone);
        assert_eq!(leave_plan(1, &[(1, true), (2, true)]), Leave::Remove);
        assert_eq!(leave_plan(2, &[(1, true), (2, false)]), Leave::Remove);
    }

    #[test]
    fn an_address_is_announced_through_members_then_seeds() {
        let seeds = vec!["10.0.0.1:7400".to_owned(), "10.0.0.9:7400".to_owned()];
        let me = "10.0.0.9:7400";
        assert_eq!(
            announce_plan(false, true, vec!["10.0.0.2:7400"], &seeds, me),
            Announce::Through(vec!["10.0.0.2:7400"])
        );
        assert_eq!(
            announce_plan(true, true, vec!["10.0.0.2:7400"], &seeds, me),
            Announce::Itself
        );
        assert_eq!(
            announce_plan(false, true, vec![], &seeds, me),
            Announce::Itself
        );
        assert_eq!(
            announce_plan(false, false, vec!["10.0.0.2:7400"], &seeds, me),
            Announce::Through(vec!["10.0.0.2:7400"])
        );
        assert_eq!(
            announce_plan(false, false, vec![], &seeds, me),
            Announce::Through(vec!["10.0.0.1:7400"])
        );
        assert_eq!(
            announce_plan(false, false, vec![], &[], me),
            Announce::Nobody
        );
        assert_eq!(
            announce_plan(false, false, vec![], &seeds[1..], me),
            Announce::Nobody
        );
    }

    #[test]
    fn the_mark_is_written_found_and_discarded() {
        let dir = std::env::temp_dir().join(format!("dbadger-left-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("scratch directory");
        assert!(!has_left(&dir));
        mark_left(&dir, 7).expect("mark");
        assert!(has_left(&dir));
        fs::create_dir_all(dir.join("lmdb")).expect("store directory");
        fs::write(dir.join("lmdb").join("data.mdb"), b"old").expect("store file");
        discard_left_node(&dir).expect("discard");
        assert!(!has_left(&dir));
        assert!(!dir.join("lmdb").exists());
        fs::remove_dir_all(&dir).expect("clean up");
    }
}
