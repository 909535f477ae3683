//! The client commands' exit codes: one per kind of answer a script needs to tell apart.

use std::process::ExitCode;

use dbadger_core::RequestError;

/// How a client command ended. The numbers are part of the command-line contract (README,
/// docs/operations.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    /// 0: the command did what it was asked.
    Success,
    /// 1: anything else (a bug on the node, a full store, an answer too large, a local I/O
    /// error).
    Other,
    /// 2: the command line or the request is wrong (clap's own code for bad flags, and the
    /// node's `INVALID_ARGUMENT`): fix it, do not retry.
    Usage,
    /// 3: the key (or member) does not exist.
    NotFound,
    /// 4: a compare-and-set found its condition false and changed nothing.
    CompareFailed,
    /// 5: no endpoint could serve the request in time (unreachable, no leader, no quorum,
    /// deadline passed); for a write, the message says whether it may have applied.
    Unavailable,
}

impl Exit {
    /// The process exit code.
    pub(crate) fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Other => 1,
            Exit::Usage => 2,
            Exit::NotFound => 3,
            Exit::CompareFailed => 4,
            Exit::Unavailable => 5,
        }
    }

    /// The exit of a command that failed with `error` (as `dbadger_grpc::status::from_status`
    /// reads the node's answer: a transport failure is `Unavailable`).
    pub(crate) fn of_error(error: &RequestError) -> Exit {
        match error {
            RequestError::NotFound
            | RequestError::UnknownMember { .. }
            | RequestError::UnknownSnapshot { .. } => Exit::NotFound,
            RequestError::InvalidArgument(_) => Exit::Usage,
            RequestError::Unavailable { .. }
            | RequestError::Timeout { .. }
            | RequestError::ShuttingDown { .. } => Exit::Unavailable,
            _ => Exit::Other,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every exit has its own number, and each status code lands on the documented one.
    #[test]
    fn exits_are_distinct_and_statuses_map_as_documented() {
        let all = [
            Exit::Success,
            Exit::Other,
            Exit::Usage,
            Exit::NotFound,
            Exit::CompareFailed,
            Exit::Unavailable,
        ];
        let mut codes: Vec<u8> = all.iter().map(|exit| exit.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        use dbadger_core::{InvalidArgument, Outcome};
        let cases = [
            (RequestError::NotFound, Exit::NotFound),
            (RequestError::UnknownMember { id: 1 }, Exit::NotFound),
            (
                RequestError::InvalidArgument(InvalidArgument::EmptyKey),
                Exit::Usage,
            ),
            (
                RequestError::unavailable("no leader", Outcome::NotApplied),
                Exit::Unavailable,
            ),
            (
                RequestError::Timeout {
                    deadline_ms: 1,
                    outcome: Outcome::Unknown,
                },
                Exit::Unavailable,
            ),
            (RequestError::StorageFull { max_bytes: 1 }, Exit::Other),
            (RequestError::Internal("bug".to_owned()), Exit::Other),
        ];
        for (error, exit) in cases {
            assert_eq!(Exit::of_error(&error), exit, "{error}");
        }
    }
}
