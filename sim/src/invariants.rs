//! Raft invariants that need the status of the whole cluster, sampled from outside the nodes
//! every step of the harness (20 ms in the fault phase, 100 ms while converging); the checks
//! on each store change are [`crate::step_monitor`]'s:
//!
//! - election safety, in openraft's form: dbadger uses openraft's "advanced" leader ids
//!   (term, node id), under which two candidates can both win the same term and the one with
//!   the higher node id supersedes the other, so "one leader per term" becomes "one leader per
//!   leader id" and the safety that matters is that their logs never diverge on committed
//!   entries, checked next ([`Invariants::terms_with_several_leaders`] counts such terms);
//! - committed entries never change (checked at every commit by [`crate::step_monitor`]);
//! - log matching on the whole logs: two logs holding the same log id at an index hold the same
//!   entries before it (checked at the end);
//! - term never decreases on a node (the vote is durable); the committed and applied indices
//!   never decrease within one boot of a node.

use std::collections::{BTreeMap, BTreeSet};

use dbadger_core::raft_types::LogEntry;

use crate::cluster::Cluster;

#[derive(Clone, Copy, Default)]
struct Progress {
    boot: u64,
    term: u64,
    committed: u64,
    applied: u64,
}

/// What the monitor has seen so far.
#[derive(Default)]
pub struct Invariants {
    /// The nodes seen leading each term.
    leaders: BTreeMap<u64, BTreeSet<u64>>,
    progress: BTreeMap<usize, Progress>,
    /// The term of the latest leader seen, and whether it then held entries it had not
    /// committed.
    latest_leader: Option<(u64, bool)>,
    /// Leader changes seen while the previous leader held uncommitted entries (coverage).
    pub leader_changes_with_uncommitted: u64,
    /// Every violation seen, in order.
    pub violations: Vec<String>,
}

fn entry_at(entries: &[LogEntry], index: u64) -> Option<&LogEntry> {
    let first = entries.first()?.log_id.index;
    let position = usize::try_from(index.checked_sub(first)?).ok()?;
    entries.get(position)
}

impl Invariants {
    /// Checks every running node once.
    pub fn check(&mut self, cluster: &Cluster) {
        for node in &cluster.nodes {
            if node.down || node.removed {
                continue;
            }
            let Some(status) = node.status() else {
                continue;
            };
            if status.is_leader {
                self.leaders
                    .entry(status.term)
                    .or_default()
                    .insert(node.id());
                let uncommitted = status.last_log_index > status.committed_index;
                match self.latest_leader {
                    Some((term, had_uncommitted)) if status.term > term => {
                        self.leader_changes_with_uncommitted += u64::from(had_uncommitted);
                        self.latest_leader = Some((status.term, uncommitted));
                    }
                    Some((term, _)) if status.term < term => {}
                    _ => self.latest_leader = Some((status.term, uncommitted)),
                }
            }
            let boot = node.boot();
            if std::env::var_os("DBADGER_SIM_TIMELINE").is_some() {
                eprintln!(
                    "TIMELINE {:?} node {} boot {boot} {} term {} leader {:?} committed {} applied {} last {}",
                    madsim::time::TimeHandle::current().elapsed(),
                    node.id(),
                    status.state,
                    status.term,
                    status.leader.as_ref().map(|(id, _)| id),
                    status.committed_index,
                    status.applied_index,
                    status.last_log_index
                );
            }
            let before = self.progress.get(&node.index).copied().unwrap_or_default();
            if status.term < before.term {
                self.violations.push(format!(
                    "node {}: term went back from {} to {} (boot {boot})",
                    node.id(),
                    before.term,
                    status.term
                ));
            }
            if boot == before.boot
                && (status.committed_index < before.committed
                    || status.applied_index < before.applied)
            {
                self.violations.push(format!(
                    "node {}: committed/applied went back from {}/{} to {}/{} within boot {boot}",
                    node.id(),
                    before.committed,
                    before.applied,
                    status.committed_index,
                    status.applied_index
                ));
            }
            self.progress.insert(
                node.index,
                Progress {
                    boot,
                    term: status.term.max(before.term),
                    committed: status.committed_index,
                    applied: status.applied_index,
                },
            );
        }
    }

    /// How many terms had more than one leader (allowed with advanced leader ids).
    pub fn terms_with_several_leaders(&self) -> usize {
        self.leaders
            .values()
            .filter(|leaders| leaders.len() > 1)
            .count()
    }

    /// Log matching over the whole logs of every pair of nodes.
    pub fn check_log_matching(&mut self, cluster: &Cluster) {
        let logs: Vec<(u64, Vec<LogEntry>)> = cluster
            .nodes
            .iter()
            .filter(|node| !node.removed)
            .map(|node| (node.id(), node.disk().log().1))
            .collect();
        for (position, (left_id, left)) in logs.iter().enumerate() {
            for (right_id, right) in &logs[position + 1..] {
                // Walk back from the highest common index with equal log ids.
                let mut matched = false;
                for entry in left.iter().rev() {
                    let index = entry.log_id.index;
                    let Some(other) = entry_at(right, index) else {
                        continue;
                    };
                    if other.log_id == entry.log_id {
                        matched = true;
                    } else if matched {
                        self.violations.push(format!(
                            "log matching: nodes {left_id} and {right_id} agree after index {index} but differ there ({} vs {})",
                            entry.log_id, other.log_id
                        ));
                        break;
                    }
                }
            }
        }
    }
}
