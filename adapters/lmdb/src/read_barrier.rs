//! Answering clients before the state machine's flush, and the barrier that keeps reads honest.
//!
//! The state machine applies committed log entries only, so each answer is settled once the
//! entries are applied in the transaction: it is a function of the Raft log, not of the flush.
//! [`ReadBarrier::commit_after_acknowledging`] therefore answers first and flushes after,
//! holding the barrier closed meanwhile. A read view is opened only once the barrier is open,
//! so a reader that started after an answer waits for that answer's commit and sees it. The
//! wait is at most one flush, and only for reads that arrive during one.
//!
//! If such a commit fails, the answers already sent stay true (the entries are committed in
//! the log, and are applied again from it after a reopen), but this store's state no longer
//! shows them: every later read fails until the store is reopened.

use std::sync::{PoisonError, RwLock, RwLockWriteGuard};

use dbadger_core::StorageError;
use dbadger_core::storage::StorageResult;

/// The barrier between a state-machine commit that answered early and the readers.
#[derive(Debug, Default)]
pub(crate) struct ReadBarrier {
    /// Closed (write-locked) while an answered commit is in progress; holds why reads are
    /// refused once such a commit failed.
    gate: RwLock<Option<String>>,
}

/// The barrier, closed; if it opens without a commit (a panic in `acknowledge` or in the
/// commit), answers may be out that the state does not show, so reads are refused.
struct Closed<'a> {
    refusal: RwLockWriteGuard<'a, Option<String>>,
    committed: bool,
}

impl Drop for Closed<'_> {
    fn drop(&mut self) {
        if !self.committed {
            self.refusal
                .get_or_insert_with(|| "the commit of answered writes was interrupted".to_owned());
        }
    }
}

impl ReadBarrier {
    /// Calls `acknowledge`, then `commit`, with the barrier closed throughout.
    pub(crate) fn commit_after_acknowledging(
        &self,
        acknowledge: impl FnOnce(),
        commit: impl FnOnce() -> StorageResult<()>,
    ) -> StorageResult<()> {
        let mut closed = Closed {
            refusal: self.gate.write().unwrap_or_else(PoisonError::into_inner),
            committed: false,
        };
        acknowledge();
        let outcome = commit();
        match &outcome {
            Ok(()) => closed.committed = true,
            Err(error) => {
                closed.refusal.get_or_insert_with(|| error.to_string());
            }
        }
        outcome
    }

    /// Waits while an answered commit is in progress; fails if one failed.
    pub(crate) fn pass(&self) -> StorageResult<()> {
        match self
            .gate
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            None => Ok(()),
            Some(reason) => Err(StorageError::Io(std::io::Error::other(format!(
                "reads are refused until the store is reopened: an answered write could not be \
                 stored ({reason})"
            )))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, mpsc};
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_reader_that_starts_after_the_answer_waits_for_the_commit() {
        let barrier = Arc::new(ReadBarrier::default());
        let committed = Arc::new(AtomicBool::new(false));
        let (seen, outcome) = mpsc::channel();
        let mut reader = None;
        barrier
            .commit_after_acknowledging(
                || {
                    let (barrier, committed) = (Arc::clone(&barrier), Arc::clone(&committed));
                    reader = Some(std::thread::spawn(move || {
                        barrier.pass().expect("open");
                        seen.send(committed.load(Ordering::SeqCst)).expect("send");
                    }));
                    // The reader must still be waiting: no answer from it before the commit.
                    assert!(outcome.recv_timeout(Duration::from_millis(200)).is_err());
                },
                || {
                    committed.store(true, Ordering::SeqCst);
                    Ok(())
                },
            )
            .expect("commit");
        assert!(outcome.recv().expect("reader answered"), "saw the commit");
        reader.expect("spawned").join().expect("reader");
    }

    #[test]
    fn a_panic_while_answering_refuses_every_later_read() {
        let barrier = ReadBarrier::default();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            barrier.commit_after_acknowledging(|| panic!("answering failed"), || Ok(()))
        }));
        assert!(panicked.is_err());
        assert!(barrier.pass().is_err(), "reads refused after the panic");
    }

    #[test]
    fn a_failed_answered_commit_refuses_every_later_read() {
        let barrier = ReadBarrier::default();
        barrier.pass().expect("open before");
        let failed = barrier.commit_after_acknowledging(
            || {},
            || Err(StorageError::Io(std::io::Error::other("disk gone"))),
        );
        assert!(failed.is_err());
        let refused = barrier.pass().expect_err("reads refused");
        assert!(refused.to_string().contains("disk gone"), "{refused}");
    }
}
