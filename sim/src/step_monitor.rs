//! Raft invariants checked at every step: on each vote, committed index, truncation and
//! state-machine commit a node's store makes, as it makes it (through [`DiskObserver`]).
//!
//! - a node's term never decreases, across boots (its vote is durable);
//! - an entry committed at an index is the same on every node and at every later commit;
//! - no node truncates an entry that was committed (the one committed at its index);
//! - the committed and applied indices a node saves never decrease within one boot.
//!
//! [`crate::invariants::Invariants`] adds the checks that need the whole cluster's status
//! (sampled) and the final log matching.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use dbadger_core::raft_types::{LogEntry, LogId, Vote};

use crate::store::DiskObserver;

/// An index a node saves that must never decrease within one of its boots.
#[derive(Clone, Copy)]
enum Index {
    Committed,
    Applied,
}

/// What one node saved in its current boot.
#[derive(Clone, Copy, Default)]
struct Progress {
    boot: u64,
    committed: u64,
    applied: u64,
}

#[derive(Default)]
struct Seen {
    /// The log id committed at each index, as first seen.
    committed: BTreeMap<u64, LogId>,
    /// The highest term each node saved a vote for.
    terms: HashMap<u64, u64>,
    /// Per node: the committed and applied indices it saved in its current boot.
    progress: HashMap<u64, Progress>,
    /// Store changes observed.
    steps: u64,
    violations: Vec<String>,
}

/// The monitor: attach it to every disk of a run ([`crate::store::SimDisk::observe`]).
#[derive(Default)]
pub struct StepMonitor {
    seen: Mutex<Seen>,
}

impl StepMonitor {
    fn seen(&self) -> MutexGuard<'_, Seen> {
        self.seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every violation seen so far, and how many store changes were checked.
    pub fn results(&self) -> (Vec<String>, u64) {
        let seen = self.seen();
        (seen.violations.clone(), seen.steps)
    }
}

impl Seen {
    /// Records that `node` saved `index` as its `which` index in `boot`, and reports it if that
    /// is lower than what it saved before in the same boot.
    fn advance(&mut self, node: u64, boot: u64, which: Index, index: u64) {
        let progress = self.progress.entry(node).or_default();
        if progress.boot != boot {
            *progress = Progress {
                boot,
                ..Progress::default()
            };
        }
        let (held, name) = match which {
            Index::Committed => (&mut progress.committed, "committed index"),
            Index::Applied => (&mut progress.applied, "applied index"),
        };
        let before = *held;
        *held = before.max(index);
        if index < before {
            self.violations.push(format!(
                "node {node} saved {name} {index} after {before} in boot {boot}"
            ));
        }
    }
}

impl DiskObserver for StepMonitor {
    fn vote_saved(&self, node: u64, vote: &Vote) {
        let mut seen = self.seen();
        seen.steps += 1;
        let term = vote.leader_id.term;
        let before = seen.terms.insert(node, term).unwrap_or(0);
        if term < before {
            seen.violations.push(format!(
                "node {node} saved a vote of term {term} after one of term {before}"
            ));
            seen.terms.insert(node, before);
        }
    }

    fn committed_saved(
        &self,
        node: u64,
        boot: u64,
        committed: Option<&LogId>,
        entries: &[LogEntry],
    ) {
        let mut seen = self.seen();
        seen.steps += 1;
        seen.advance(
            node,
            boot,
            Index::Committed,
            committed.map_or(0, |id| id.index),
        );
        for entry in entries {
            let first = *seen
                .committed
                .entry(entry.log_id.index)
                .or_insert(entry.log_id);
            if first != entry.log_id {
                seen.violations.push(format!(
                    "committed entry {} changed: {first} before, {} on node {node}",
                    entry.log_id.index, entry.log_id
                ));
            }
        }
    }

    fn truncating(&self, node: u64, removed: &[LogEntry]) {
        let mut seen = self.seen();
        seen.steps += 1;
        let lost: Vec<LogId> = removed
            .iter()
            .filter(|entry| seen.committed.get(&entry.log_id.index) == Some(&entry.log_id))
            .map(|entry| entry.log_id)
            .collect();
        if let Some(first) = lost.first() {
            seen.violations.push(format!(
                "node {node} truncated committed entry {first} ({} committed entries in all)",
                lost.len()
            ));
        }
    }

    fn applied(&self, node: u64, boot: u64, applied: Option<&LogId>) {
        let mut seen = self.seen();
        seen.steps += 1;
        seen.advance(node, boot, Index::Applied, applied.map_or(0, |id| id.index));
    }
}
