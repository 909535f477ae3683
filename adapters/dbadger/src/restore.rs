//! `Db::restore`: replacing the whole cluster's state with a snapshot file, through the log
//! (see `dbadger_core::restore`): the file is checked here first, then proposed as a `Begin`,
//! its pieces and a `Commit`, each an ordinary write that any node forwards to the leader.
//!
//! A piece whose answer was lost (the leader changed, the deadline passed) is sent again: the
//! state machine ignores a piece it staged already, so a restore survives a leader crash in
//! the middle. If the restore cannot go on, it is abandoned with an `Abort` (best effort; a
//! later restore discards it anyway).

use std::io::{self, Read};

use dbadger_core::restore::RestoreStep;
use dbadger_core::snapshot_format::verify;
use dbadger_core::storage::StateMachineStore;
use dbadger_core::{Command, Outcome, RequestError, Response};
use tokio::time::Instant;

use crate::node::Node;
use crate::routing::LEADER_POLL;

/// What a restore did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestoreInfo {
    /// The revision (log index) of the restore: every restored pair has it.
    pub revision: u64,
    /// How many pairs the key space holds now.
    pub keys: u64,
}

/// Opens the snapshot file to restore, from its start, as often as asked.
pub type SnapshotSource<'a> = dyn Fn() -> io::Result<Box<dyn Read + Send>> + Send + Sync + 'a;

/// The largest piece a restore sends: a megabyte, or half the request limit if that is less.
pub(crate) fn piece_bytes(max_request_bytes: usize) -> usize {
    (max_request_bytes / 2).clamp(1, 1 << 20)
}

/// The file's length and CRC-32, after checking that it is a whole, valid snapshot.
fn measure(source: &SnapshotSource<'_>) -> Result<(u64, u32), RequestError> {
    let invalid = |error: String| RequestError::Refused {
        reason: format!("the snapshot cannot be restored: {error}"),
    };
    verify(source().map_err(|error| invalid(error.to_string()))?)
        .map_err(|error| invalid(error.to_string()))?;
    let mut input = source().map_err(|error| invalid(error.to_string()))?;
    let mut hasher = crc32fast::Hasher::new();
    let mut length = 0u64;
    let mut buffer = vec![0; 1 << 16];
    loop {
        let read = input
            .read(&mut buffer)
            .map_err(|error| invalid(error.to_string()))?;
        if read == 0 {
            return Ok((length, hasher.finalize()));
        }
        hasher.update(&buffer[..read]);
        length += read as u64;
    }
}

impl<S: StateMachineStore> Node<S> {
    /// Proposes one restore step, sent again until `retry_until` (none: never) while it fails
    /// in a way a retry may fix, whatever became of it: every step may be repeated without
    /// harm (a piece staged twice counts once; a `Begin` sent again starts the restore afresh,
    /// discarding the first; a `Commit` or `Abort` sent again after one that applied finds no
    /// restore and changes nothing). Returns the answer and whether an earlier attempt may
    /// have applied. A step that fails after an attempt whose answer was lost fails with an
    /// unknown outcome, whatever the last attempt said. Each attempt gets the node's request
    /// timeout.
    async fn restore_step(
        &self,
        step: RestoreStep,
        retry_until: Option<Instant>,
    ) -> Result<(Response, bool), RequestError> {
        let command = Command::Restore(step);
        let mut uncertain = false;
        loop {
            let deadline = Instant::now() + self.request_timeout;
            match self.write_routed(command.clone(), deadline, true).await {
                Err(error)
                    if error.is_retryable()
                        && retry_until.is_some_and(|until| Instant::now() < until) =>
                {
                    uncertain |= error.outcome() == Outcome::Unknown;
                    tokio::time::sleep(LEADER_POLL).await;
                }
                Err(error) if uncertain => return Err(may_have_applied(error)),
                Err(error) => return Err(error),
                Ok(answer) => return Ok((answer, uncertain)),
            }
        }
    }

    /// Replaces the whole cluster's key space with the snapshot `source` opens (see the module
    /// documentation). Runs from any node.
    pub(crate) async fn restore(
        &self,
        source: &SnapshotSource<'_>,
    ) -> Result<RestoreInfo, RequestError> {
        let (bytes, crc) = measure(source)?;
        let piece = piece_bytes(self.limits.max_request_bytes);
        let pieces = bytes.div_ceil(piece as u64);
        let begin = match self
            .restore_step(
                RestoreStep::Begin { bytes, pieces, crc },
                Some(self.retry_window()),
            )
            .await?
        {
            (Response::Written { revision }, _) => revision,
            (other, _) => return Err(unexpected(&other)),
        };
        let sent = self.send_pieces(source, begin, piece).await;
        let committed = match sent {
            Ok(()) => {
                self.restore_step(RestoreStep::Commit { begin }, Some(self.retry_window()))
                    .await
            }
            Err(error) => Err(error),
        };
        match committed {
            Ok((Response::Restored { revision, keys }, _)) => Ok(RestoreInfo { revision, keys }),
            // An earlier commit whose answer was lost may have applied: this one then finds
            // no restore left to commit.
            Ok((Response::RestoreFailed { .. }, true)) => Err(RequestError::unavailable(
                "the restore's commit answer was lost; read the data to see whether it applied",
                Outcome::Unknown,
            )),
            Ok((Response::RestoreFailed { reason }, false)) => {
                Err(RequestError::Refused { reason })
            }
            Ok((other, _)) => Err(unexpected(&other)),
            Err(error) => {
                if error.outcome() == Outcome::NotApplied {
                    let _ = self.restore_step(RestoreStep::Abort { begin }, None).await;
                }
                Err(error)
            }
        }
    }

    /// How long a step is sent again: long enough to ride out several leader changes or a
    /// partition of some seconds (a restore is an operator's long call, better finished late
    /// than abandoned).
    fn retry_window(&self) -> Instant {
        Instant::now() + self.request_timeout * 4 + self.patience * 8
    }

    async fn send_pieces(
        &self,
        source: &SnapshotSource<'_>,
        begin: u64,
        piece: usize,
    ) -> Result<(), RequestError> {
        let mut input = source().map_err(|error| RequestError::Internal(error.to_string()))?;
        let mut seq = 0;
        loop {
            let mut data = Vec::with_capacity(piece);
            let read = (&mut *input)
                .take(piece as u64)
                .read_to_end(&mut data)
                .map_err(|error| {
                    RequestError::Internal(format!("reading the snapshot: {error}"))
                })?;
            if read == 0 {
                return Ok(());
            }
            seq += 1;
            let step = RestoreStep::Piece { begin, seq, data };
            match self.restore_step(step, Some(self.retry_window())).await? {
                (Response::Written { .. }, _) => {}
                (Response::RestoreFailed { reason }, _) => {
                    return Err(RequestError::Refused { reason });
                }
                (other, _) => return Err(unexpected(&other)),
            }
        }
    }
}

/// The error that ends a step after an earlier attempt that may have applied: the step's
/// outcome is unknown, even where the last attempt was surely refused (a commit whose first
/// answer was lost may have replaced the key space before the second found no quorum).
fn may_have_applied(error: RequestError) -> RequestError {
    if error.outcome() == Outcome::Unknown {
        return error;
    }
    let error = error.with_outcome(Outcome::Unknown);
    if error.outcome() == Outcome::Unknown {
        return error;
    }
    RequestError::unavailable(
        format!("{error}, after an earlier attempt whose answer was lost"),
        Outcome::Unknown,
    )
}

fn unexpected(response: &Response) -> RequestError {
    RequestError::Internal(format!("unexpected answer to a restore step: {response:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_that_may_have_applied_never_fails_as_not_applied() {
        let no_quorum = RequestError::unavailable("no quorum", Outcome::NotApplied);
        let upgraded = may_have_applied(no_quorum);
        assert_eq!(upgraded.outcome(), Outcome::Unknown);
        assert!(upgraded.to_string().contains("no quorum"));
        let full = may_have_applied(RequestError::StorageFull { max_bytes: 1 });
        assert_eq!(full.outcome(), Outcome::Unknown);
        assert!(full.to_string().contains("storage full"));
        let unknown = RequestError::unavailable("lost", Outcome::Unknown);
        assert_eq!(may_have_applied(unknown.clone()), unknown);
    }

    #[test]
    fn pieces_fit_the_request_limit() {
        assert_eq!(piece_bytes(3 << 20), 1 << 20);
        assert_eq!(piece_bytes(1 << 20), 1 << 19);
        assert_eq!(piece_bytes(1), 1);
    }
}
