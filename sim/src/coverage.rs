//! How often a run took each recovery path and injected each class of fault, and the table a
//! sweep aggregates from its runs: a bug on a path no seed reaches is invisible however many
//! seeds run, so the sweep says which paths its seeds reached and how often.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::nemesis::FaultClass;

/// A path through the recovery code, or a class of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Path {
    /// A node built a snapshot of its state machine.
    SnapshotBuilt,
    /// A node that held no key installed a snapshot from the leader.
    SnapshotInstalledOnEmpty,
    /// A node that still held keys of an older state installed a snapshot over them.
    SnapshotInstalledOverOlderData,
    /// A follower truncated a conflicting suffix of its log.
    ConflictingSuffixTruncated,
    /// A crash lost log entries that were written but not yet synced.
    CrashLostUnsyncedLog,
    /// A crash lost state-machine commits that were not yet synced, and the node replayed the
    /// log over the older state when it booted again.
    CrashLostStateThenReplay,
    /// A node booted on a state machine that was durable past the end of its durable log.
    BootWithStateAheadOfLog,
    /// A new leader took over while the old one held entries it had not committed.
    LeaderChangeWithUncommittedEntries,
    /// A membership change (remove, leave) whose call failed: interrupted by a fault.
    MembershipChangeInterrupted,
    /// A fault action of this class.
    Fault(FaultClass),
}

impl Path {
    /// Every path, in table order.
    pub fn all() -> Vec<Path> {
        let mut paths = vec![
            Path::SnapshotBuilt,
            Path::SnapshotInstalledOnEmpty,
            Path::SnapshotInstalledOverOlderData,
            Path::ConflictingSuffixTruncated,
            Path::CrashLostUnsyncedLog,
            Path::CrashLostStateThenReplay,
            Path::BootWithStateAheadOfLog,
            Path::LeaderChangeWithUncommittedEntries,
            Path::MembershipChangeInterrupted,
        ];
        paths.extend(FaultClass::ALL.into_iter().map(Path::Fault));
        paths
    }

    /// A short name for tables and messages.
    pub fn name(&self) -> String {
        match self {
            Path::SnapshotBuilt => "snapshot built".to_owned(),
            Path::SnapshotInstalledOnEmpty => "snapshot installed on an empty node".to_owned(),
            Path::SnapshotInstalledOverOlderData => "snapshot installed over older data".to_owned(),
            Path::ConflictingSuffixTruncated => "conflicting log suffix truncated".to_owned(),
            Path::CrashLostUnsyncedLog => "crash lost unsynced log entries".to_owned(),
            Path::CrashLostStateThenReplay => {
                "crash lost state-machine commits, then replay".to_owned()
            }
            Path::BootWithStateAheadOfLog => "boot with the state ahead of the log".to_owned(),
            Path::LeaderChangeWithUncommittedEntries => {
                "leader change with uncommitted entries".to_owned()
            }
            Path::MembershipChangeInterrupted => "membership change interrupted".to_owned(),
            Path::Fault(class) => format!("fault: {class:?}"),
        }
    }
}

/// How many times one run took each path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    counts: BTreeMap<Path, u64>,
}

impl Coverage {
    /// Counts `times` more of `path`.
    pub fn add(&mut self, path: Path, times: u64) {
        if times > 0 {
            *self.counts.entry(path).or_default() += times;
        }
    }

    /// How many times the run took `path`.
    pub fn count(&self, path: Path) -> u64 {
        self.counts.get(&path).copied().unwrap_or(0)
    }
}

/// The coverage of many runs: for each path, the times it ran and the runs that reached it.
#[derive(Clone, Debug, Default)]
pub struct CoverageTable {
    runs: u64,
    totals: BTreeMap<Path, u64>,
    reached: BTreeMap<Path, u64>,
}

impl CoverageTable {
    /// Adds one run.
    pub fn add(&mut self, coverage: &Coverage) {
        self.runs += 1;
        for (path, count) in &coverage.counts {
            *self.totals.entry(*path).or_default() += count;
            *self.reached.entry(*path).or_default() += 1;
        }
    }

    /// The fraction of the runs that reached `path` (0 with no runs).
    pub fn fraction(&self, path: Path) -> f64 {
        if self.runs == 0 {
            return 0.0;
        }
        self.reached.get(&path).copied().unwrap_or(0) as f64 / self.runs as f64
    }

    /// The paths reached by fewer than `fraction` of the runs.
    pub fn below(&self, fraction: f64) -> Vec<Path> {
        Path::all()
            .into_iter()
            .filter(|path| self.fraction(*path) < fraction)
            .collect()
    }

    /// The table: each path, the times it ran, and the runs that reached it.
    pub fn render(&self) -> String {
        let mut table = format!(
            "{:<48} {:>10} {:>16}\n",
            "path", "times", "runs reaching it"
        );
        for path in Path::all() {
            let _ = writeln!(
                table,
                "{:<48} {:>10} {:>9} {:>5.1}%",
                path.name(),
                self.totals.get(&path).copied().unwrap_or(0),
                self.reached.get(&path).copied().unwrap_or(0),
                100.0 * self.fraction(path)
            );
        }
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_counts_times_and_the_runs_that_reached_each_path() {
        let mut first = Coverage::default();
        first.add(Path::SnapshotBuilt, 3);
        first.add(Path::ConflictingSuffixTruncated, 0);
        let mut second = Coverage::default();
        second.add(Path::SnapshotBuilt, 2);
        second.add(Path::Fault(FaultClass::Crash), 1);
        let mut table = CoverageTable::default();
        table.add(&first);
        table.add(&second);
        assert_eq!(table.fraction(Path::SnapshotBuilt), 1.0);
        assert_eq!(table.fraction(Path::Fault(FaultClass::Crash)), 0.5);
        assert_eq!(table.fraction(Path::ConflictingSuffixTruncated), 0.0);
        let below = table.below(0.5);
        assert!(below.contains(&Path::ConflictingSuffixTruncated));
        assert!(!below.contains(&Path::Fault(FaultClass::Crash)));
        assert!(table.render().contains("snapshot built"));
    }
}
