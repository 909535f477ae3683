//! The fault-injection seam: make a chosen write, commit or sync of an LMDB store fail, to test
//! the failure paths (the writer's fsyncgate rule, the node's storage-full handling) against the
//! real store instead of a stand-in.
//!
//! A store opened with [`LmdbStore::open`](crate::LmdbStore::open) has no plan and pays one
//! relaxed atomic load per checked call. [`LmdbStore::open_with_faults`](crate::LmdbStore::open_with_faults)
//! takes an [`LmdbFaults`] handle that tests keep and arm while the store runs.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use dbadger_core::StorageError;
use dbadger_core::storage::StorageResult;

/// A place in the store where a fault can be injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultPoint {
    /// A `put` or delete inside a write transaction (where LMDB reports a full map), or a
    /// write of log records to a segment file.
    Write,
    /// The commit of a write transaction (LMDB writes and flushes the data pages).
    Commit,
    /// The flush of the meta page that makes a commit durable (`force_sync`), or the flush of
    /// a segment file the log wrote.
    Sync,
}

/// The error an injected fault produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectedFault {
    /// An I/O error (EIO), as a failing disk reports it.
    Io,
    /// The map is full (`MDB_MAP_FULL`), reported as [`StorageError::Full`].
    Full,
    /// The call stalls this long, then goes on normally (a slow or wedged disk).
    Stall(Duration),
}

#[derive(Debug)]
struct Planned {
    point: FaultPoint,
    /// Calls at `point` still to pass before this one fails (0: the next call fails).
    calls_before: u64,
    fault: InjectedFault,
}

#[derive(Debug, Default)]
struct Plan {
    planned: Vec<Planned>,
}

#[derive(Debug, Default)]
struct Inner {
    armed: AtomicBool,
    plan: Mutex<Plan>,
    injected: AtomicU64,
}

/// A handle on the faults planned for one store; clones share the plan.
#[derive(Clone, Debug, Default)]
pub struct LmdbFaults {
    inner: Arc<Inner>,
}

impl LmdbFaults {
    /// A handle with nothing planned.
    pub fn new() -> LmdbFaults {
        LmdbFaults::default()
    }

    /// Makes the call at `point` that comes after `calls_before` more such calls fail with
    /// `fault` (0: the very next one). Several plans may be pending at once.
    pub fn fail_at(&self, point: FaultPoint, calls_before: u64, fault: InjectedFault) {
        self.plan().planned.push(Planned {
            point,
            calls_before,
            fault,
        });
        self.inner.armed.store(true, Ordering::Release);
    }

    /// Drops every fault still planned.
    pub fn clear(&self) {
        self.plan().planned.clear();
        self.inner.armed.store(false, Ordering::Release);
    }

    /// How many faults were injected so far.
    pub fn injected(&self) -> u64 {
        self.inner.injected.load(Ordering::Relaxed)
    }

    /// Counts one call at `point` and fails it if a planned fault is due.
    pub(crate) fn check(&self, point: FaultPoint, max_bytes: u64) -> StorageResult<()> {
        if !self.inner.armed.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut plan = self.plan();
        let mut due = None;
        for (position, planned) in plan.planned.iter_mut().enumerate() {
            if planned.point != point {
                continue;
            }
            if planned.calls_before == 0 && due.is_none() {
                due = Some(position);
            } else {
                planned.calls_before = planned.calls_before.saturating_sub(1);
            }
        }
        let Some(position) = due else {
            return Ok(());
        };
        let planned = plan.planned.remove(position);
        if plan.planned.is_empty() {
            self.inner.armed.store(false, Ordering::Release);
        }
        drop(plan);
        self.inner.injected.fetch_add(1, Ordering::Relaxed);
        Err(match planned.fault {
            InjectedFault::Io => StorageError::Io(std::io::Error::other(format!(
                "injected I/O error at the {point:?} step"
            ))),
            InjectedFault::Full => StorageError::Full { max_bytes },
            InjectedFault::Stall(duration) => {
                std::thread::sleep(duration);
                return Ok(());
            }
        })
    }

    fn plan(&self) -> MutexGuard<'_, Plan> {
        // A plan is a list edited in single steps; a panic elsewhere cannot leave it torn.
        self.inner
            .plan
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_hits_the_chosen_call_at_its_point_only() {
        let faults = LmdbFaults::new();
        faults.fail_at(FaultPoint::Sync, 2, InjectedFault::Io);
        assert!(faults.check(FaultPoint::Write, 1).is_ok());
        assert!(faults.check(FaultPoint::Sync, 1).is_ok());
        assert!(faults.check(FaultPoint::Sync, 1).is_ok());
        assert!(matches!(
            faults.check(FaultPoint::Sync, 1),
            Err(StorageError::Io(_))
        ));
        assert!(faults.check(FaultPoint::Sync, 1).is_ok(), "fires once");
        assert_eq!(faults.injected(), 1);
    }

    #[test]
    fn a_full_fault_reports_the_configured_maximum() {
        let faults = LmdbFaults::new();
        faults.fail_at(FaultPoint::Write, 0, InjectedFault::Full);
        assert!(matches!(
            faults.check(FaultPoint::Write, 77),
            Err(StorageError::Full { max_bytes: 77 })
        ));
    }

    #[test]
    fn cleared_plans_never_fire() {
        let faults = LmdbFaults::new();
        faults.fail_at(FaultPoint::Commit, 0, InjectedFault::Io);
        faults.clear();
        assert!(faults.check(FaultPoint::Commit, 1).is_ok());
        assert_eq!(faults.injected(), 0);
    }
}
