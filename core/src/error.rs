//! The errors of dbadger-core: one enum for the crate, with a detail type per concern.
//!
//! Request errors ([`InvalidArgument`]) are the caller's to fix; [`DecodeError`] means bytes from
//! the network or disk are not a valid encoding; [`StorageError`] is the store failing;
//! [`ConfigError`] rejects a configuration before anything starts.

use std::io;

/// Any error dbadger-core reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request is malformed or exceeds a limit; nothing was changed.
    #[error(transparent)]
    InvalidArgument(#[from] InvalidArgument),
    /// Bytes do not decode as the expected encoding.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The configuration breaks a rule.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// What became of a request that failed. Every [`RequestError`] says which.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Certainly not applied: nothing changed. The same request may be sent again blindly.
    NotApplied,
    /// It may have applied. Retry only an idempotent write, or read first to find out.
    Unknown,
}

impl Outcome {
    /// What an error message adds for this outcome: nothing when nothing happened, a warning
    /// when the request may have applied.
    fn note(self) -> &'static str {
        match self {
            Outcome::NotApplied => "",
            Outcome::Unknown => " (it may have applied)",
        }
    }
}

/// Why a client request (a read, a write, a membership change) failed. This is the error
/// vocabulary shared by the embeddable API, request forwarding and the gRPC boundary, where each
/// variant maps to one status code.
///
/// Each error says what became of the request ([`RequestError::outcome`]) and whether sending it
/// again may succeed ([`RequestError::is_retryable`]). A request is safe to retry blindly when
/// both hold: retryable and [`Outcome::NotApplied`] ([`RequestError::is_safe_to_retry`]).
/// Reads never apply anything, so a failed read is always [`Outcome::NotApplied`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The request is malformed or exceeds a limit (`INVALID_ARGUMENT`, or
    /// `RESOURCE_EXHAUSTED` for a request that is too large). Not applied.
    #[error(transparent)]
    InvalidArgument(#[from] InvalidArgument),
    /// The key does not exist (`NOT_FOUND`).
    #[error("key not found")]
    NotFound,
    /// A membership change names a node that is not a member (`NOT_FOUND`). Not applied.
    #[error("node {id} is not a member of the cluster")]
    UnknownMember {
        /// The id that was asked for.
        id: u64,
    },
    /// A cluster operation the cluster's state does not allow (`FAILED_PRECONDITION`): removing
    /// or demoting the last voter, making a voter a learner by adding it, handing leadership to
    /// a learner. Not applied; not retryable as it is.
    #[error("refused: {reason}")]
    Refused {
        /// Why, in a few words.
        reason: String,
    },
    /// No snapshot with this id is kept on the node (`NOT_FOUND`).
    #[error("no snapshot {id} on this node")]
    UnknownSnapshot {
        /// The id that was asked for.
        id: String,
    },
    /// No leader can be reached, or the leader cannot reach a quorum (`UNAVAILABLE`).
    /// Retryable; `outcome` says whether a write may have applied.
    #[error("unavailable: {reason}{note}", note = outcome.note())]
    Unavailable {
        /// What is missing, in a few words.
        reason: String,
        /// The leader this node last knew of, if any: (id, address).
        leader: Option<(u64, String)>,
        /// What became of the request.
        outcome: Outcome,
    },
    /// The caller's deadline passed first (`DEADLINE_EXCEEDED`). Retryable; `outcome` says
    /// whether a write may have applied.
    #[error("deadline of {deadline_ms} ms exceeded{note}", note = outcome.note())]
    Timeout {
        /// The deadline that passed, in milliseconds.
        deadline_ms: u64,
        /// What became of the request.
        outcome: Outcome,
    },
    /// The store is at its configured maximum (`RESOURCE_EXHAUSTED`); reads still work. Not
    /// applied.
    #[error("storage full: the store reached its maximum of {max_bytes} bytes")]
    StorageFull {
        /// The configured maximum size in bytes.
        max_bytes: u64,
    },
    /// The answer would be larger than the configured response limit and cannot be cut short
    /// (`RESOURCE_EXHAUSTED`): ask for fewer keys. Decided before anything is proposed: not
    /// applied.
    #[error("the answer of {bytes} bytes exceeds the response limit of {max} bytes")]
    ResponseTooLarge {
        /// The size the answer would have, in bytes (at least).
        bytes: usize,
        /// The configured response limit in bytes.
        max: usize,
    },
    /// The node is stopping or has stopped (`UNAVAILABLE`). Retryable on another node;
    /// `outcome` says whether a write may have applied.
    #[error("the node is shutting down{note}", note = outcome.note())]
    ShuttingDown {
        /// What became of the request.
        outcome: Outcome,
    },
    /// The node's Raft core stopped on a failure, its disk's most likely (`UNAVAILABLE`,
    /// `NODE_FAILED`): this node serves nothing until it is restarted, so the request is not
    /// retryable here (another node may take it). The outcome of a write is unknown.
    #[error("the node has failed and must be restarted: {reason}")]
    Fatal {
        /// What stopped it.
        reason: String,
    },
    /// Anything else (`INTERNAL`): a bug, with its description. The outcome is unknown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl RequestError {
    /// `Unavailable` with no leader hint.
    pub fn unavailable(reason: impl Into<String>, outcome: Outcome) -> RequestError {
        RequestError::Unavailable {
            reason: reason.into(),
            leader: None,
            outcome,
        }
    }

    /// What became of the request.
    pub fn outcome(&self) -> Outcome {
        match self {
            RequestError::Unavailable { outcome, .. }
            | RequestError::Timeout { outcome, .. }
            | RequestError::ShuttingDown { outcome } => *outcome,
            RequestError::Internal(_) | RequestError::Fatal { .. } => Outcome::Unknown,
            RequestError::InvalidArgument(_)
            | RequestError::NotFound
            | RequestError::UnknownMember { .. }
            | RequestError::Refused { .. }
            | RequestError::UnknownSnapshot { .. }
            | RequestError::StorageFull { .. }
            | RequestError::ResponseTooLarge { .. } => Outcome::NotApplied,
        }
    }

    /// This error with its outcome replaced, where the error has one (unavailable, timeout,
    /// shutting down); any other error unchanged. Used where the caller knows better than the
    /// place the error came from, for example that a read changed nothing.
    pub fn with_outcome(self, outcome: Outcome) -> RequestError {
        match self {
            RequestError::Unavailable { reason, leader, .. } => RequestError::Unavailable {
                reason,
                leader,
                outcome,
            },
            RequestError::Timeout { deadline_ms, .. } => RequestError::Timeout {
                deadline_ms,
                outcome,
            },
            RequestError::ShuttingDown { .. } => RequestError::ShuttingDown { outcome },
            other => other,
        }
    }

    /// Whether sending the same request again (perhaps to another node, after a pause) may
    /// succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            RequestError::Unavailable { .. }
                | RequestError::Timeout { .. }
                | RequestError::ShuttingDown { .. }
        )
    }

    /// Whether the same request may be sent again without any risk of applying it twice:
    /// retryable, and certainly not applied.
    pub fn is_safe_to_retry(&self) -> bool {
        self.is_retryable() && self.outcome() == Outcome::NotApplied
    }

    /// The short human reason, without the category the status code already names (for
    /// `Unavailable`, its reason; otherwise the whole message).
    pub fn reason(&self) -> String {
        match self {
            RequestError::Unavailable { reason, .. } => reason.clone(),
            RequestError::Internal(reason)
            | RequestError::Fatal { reason }
            | RequestError::Refused { reason } => reason.clone(),
            other => other.to_string(),
        }
    }

    /// This error with the length of the deadline that passed filled in, if it is a
    /// [`RequestError::Timeout`]; any other error unchanged. The node finds that a deadline
    /// passed deep inside a request; whoever set the deadline knows how long it was.
    pub fn with_deadline(self, deadline: std::time::Duration) -> RequestError {
        match self {
            RequestError::Timeout { outcome, .. } => RequestError::Timeout {
                deadline_ms: u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX),
                outcome,
            },
            other => other,
        }
    }
}

/// A request that breaks a validation rule. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidArgument {
    /// A key is empty.
    #[error("empty key")]
    EmptyKey,
    /// A key is longer than LMDB's 511-byte maximum.
    #[error("key of {len} bytes exceeds the maximum of {max} bytes")]
    KeyTooLong {
        /// The key's length in bytes.
        len: usize,
        /// The maximum key length in bytes.
        max: usize,
    },
    /// A value is larger than the configured maximum.
    #[error("value of {len} bytes exceeds the maximum of {max} bytes")]
    ValueTooLarge {
        /// The value's length in bytes.
        len: usize,
        /// The configured maximum value length in bytes.
        max: usize,
    },
    /// `set_many` was given different numbers of keys and values.
    #[error("set_many got {keys} keys but {values} values")]
    LengthMismatch {
        /// How many keys were given.
        keys: usize,
        /// How many values were given.
        values: usize,
    },
    /// One request names more keys than the configured maximum.
    #[error("request has {count} operations, more than the maximum of {max}")]
    TooManyOperations {
        /// How many keys the request names.
        count: usize,
        /// The configured maximum.
        max: usize,
    },
    /// One request carries more key and value bytes than the configured maximum.
    #[error("request carries {bytes} bytes, more than the maximum of {max}")]
    RequestTooLarge {
        /// The request's key and value bytes.
        bytes: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The request's bytes do not form a valid request: not protobuf, an unknown enum value,
    /// a required field missing.
    #[error("malformed request: {reason}")]
    Malformed {
        /// What is wrong, in a few words.
        reason: String,
    },
}

/// Bytes that are not a valid encoding. Decoding never panics; it reports one of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended in the middle of a value.
    #[error("input ends early: {needed} more bytes needed for {what}")]
    UnexpectedEnd {
        /// What was being decoded.
        what: &'static str,
        /// How many bytes were missing.
        needed: usize,
    },
    /// A complete value was decoded but bytes were left over.
    #[error("{count} trailing bytes after the encoded value")]
    TrailingBytes {
        /// How many bytes were left.
        count: usize,
    },
    /// The format version byte is not one this build understands.
    #[error("unsupported {what} format version {version}")]
    UnsupportedVersion {
        /// Which format.
        what: &'static str,
        /// The version found.
        version: u16,
    },
    /// A tag byte names no known variant.
    #[error("unknown {what} tag {tag}")]
    UnknownTag {
        /// Which enumeration.
        what: &'static str,
        /// The tag found.
        tag: u8,
    },
    /// A length or count is larger than the rest of the input could hold.
    #[error("{what} length {len} exceeds the {remaining} bytes left")]
    LengthOutOfBounds {
        /// What the length describes.
        what: &'static str,
        /// The length found.
        len: u64,
        /// The bytes left in the input.
        remaining: usize,
    },
    /// The bytes decode but are not in the one canonical form this codec writes (for example a
    /// boolean other than 0 or 1, or set members out of order).
    #[error("non-canonical encoding of {what}")]
    NonCanonical {
        /// What was non-canonical.
        what: &'static str,
    },
    /// A string field is not UTF-8.
    #[error("{what} is not valid UTF-8")]
    InvalidUtf8 {
        /// Which field.
        what: &'static str,
    },
    /// A membership config violates openraft's rules (empty config, voter without a node).
    #[error("invalid membership: {reason}")]
    InvalidMembership {
        /// Why openraft refused it.
        reason: String,
    },
    /// The file does not start with the expected magic bytes.
    #[error("not a {what}: bad magic bytes")]
    BadMagic {
        /// What the file should have been.
        what: &'static str,
    },
    /// A checksum does not match the data.
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    ChecksumMismatch {
        /// The checksum in the data.
        stored: u32,
        /// The checksum of the bytes read.
        computed: u32,
    },
    /// Reading the underlying stream failed.
    #[error("read failed: {0}")]
    Read(String),
}

/// The store failed. Whatever the store acknowledged before is still there.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The store has reached its configured maximum size: writes fail, reads keep working.
    #[error("storage full: the store reached its maximum of {max_bytes} bytes")]
    Full {
        /// The configured maximum size in bytes.
        max_bytes: u64,
    },
    /// Stored bytes do not decode: the store is damaged.
    #[error("corrupt {what}: {source}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// Why it does not decode.
        source: DecodeError,
    },
    /// A log entry the store should hold is missing (a hole in the log).
    #[error("log entry {index} is missing")]
    MissingEntry {
        /// The missing index.
        index: u64,
    },
    /// A request the store's contract forbids, such as appending with a gap.
    #[error("storage contract violation: {0}")]
    Contract(String),
    /// A read view stayed open longer than the store allows; it was closed so that it cannot pin
    /// old pages forever. Retry with a fresh view.
    #[error("read view expired after {limit_ms} ms")]
    ReadExpired {
        /// The store's bound on one read view, in milliseconds.
        limit_ms: u64,
    },
    /// The operating system or the storage engine reported an error.
    #[error("storage I/O: {0}")]
    Io(#[from] io::Error),
    /// The simulator injected this fault.
    #[error("injected fault: {0}")]
    Injected(String),
}

impl StorageError {
    /// Wraps a decode failure of stored bytes.
    pub fn corrupt(what: &'static str, source: DecodeError) -> StorageError {
        StorageError::Corrupt { what, source }
    }
}

/// openraft speaks `std::io::Error`; the conversion keeps the kind (so storage-full stays
/// recognisable as [`io::ErrorKind::StorageFull`]) and the message.
impl From<StorageError> for io::Error {
    fn from(error: StorageError) -> io::Error {
        match error {
            StorageError::Io(inner) => inner,
            StorageError::Full { .. } => io::Error::new(io::ErrorKind::StorageFull, error),
            StorageError::Corrupt { .. } => io::Error::new(io::ErrorKind::InvalidData, error),
            StorageError::ReadExpired { .. } => io::Error::new(io::ErrorKind::TimedOut, error),
            other => io::Error::other(other),
        }
    }
}

/// A configuration that breaks one of dbadger's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Two options that exclude each other were both set.
    #[error("{first} and {second} cannot be used together")]
    Conflict {
        /// One option.
        first: &'static str,
        /// The other option.
        second: &'static str,
    },
    /// An option needs another one that is missing.
    #[error("{option} requires {required}")]
    Requires {
        /// The option that was set.
        option: &'static str,
        /// The option it needs.
        required: &'static str,
    },
    /// A value is outside its allowed range.
    #[error("{option} = {value} is invalid: {rule}")]
    OutOfRange {
        /// The option.
        option: &'static str,
        /// Its value, rendered.
        value: String,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// One timing option must not exceed another.
    #[error("{smaller} ({smaller_ms} ms) must not exceed {larger} ({larger_ms} ms)")]
    Ordering {
        /// The option that must be the smaller.
        smaller: &'static str,
        /// Its value in milliseconds.
        smaller_ms: u64,
        /// The option that must be the larger.
        larger: &'static str,
        /// Its value in milliseconds.
        larger_ms: u64,
    },
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{InvalidArgument, Outcome, RequestError};

    #[test]
    fn with_deadline_fills_in_timeouts_only() {
        let timeout = RequestError::Timeout {
            deadline_ms: 0,
            outcome: Outcome::Unknown,
        };
        assert_eq!(
            timeout.with_deadline(Duration::from_millis(1500)),
            RequestError::Timeout {
                deadline_ms: 1500,
                outcome: Outcome::Unknown,
            }
        );
        let full = RequestError::StorageFull { max_bytes: 7 };
        assert_eq!(full.clone().with_deadline(Duration::from_secs(1)), full);
    }

    /// Only retryable errors that certainly did not apply are safe to retry blindly; a
    /// retryable error of unknown outcome is not, and neither is a final answer.
    #[test]
    fn safe_to_retry_needs_retryable_and_not_applied() {
        let unavailable = |outcome| RequestError::unavailable("no leader", outcome);
        assert!(unavailable(Outcome::NotApplied).is_safe_to_retry());
        assert!(!unavailable(Outcome::Unknown).is_safe_to_retry());
        assert!(unavailable(Outcome::Unknown).is_retryable());
        assert!(
            RequestError::ShuttingDown {
                outcome: Outcome::NotApplied
            }
            .is_safe_to_retry()
        );
        for final_answer in [
            RequestError::NotFound,
            RequestError::UnknownMember { id: 3 },
            RequestError::InvalidArgument(InvalidArgument::EmptyKey),
            RequestError::StorageFull { max_bytes: 1 },
            RequestError::ResponseTooLarge { bytes: 2, max: 1 },
        ] {
            assert_eq!(
                final_answer.outcome(),
                Outcome::NotApplied,
                "{final_answer}"
            );
            assert!(!final_answer.is_retryable(), "{final_answer}");
        }
        assert_eq!(
            RequestError::Internal("bug".into()).outcome(),
            Outcome::Unknown
        );
        let fatal = RequestError::Fatal {
            reason: "the log append failed".into(),
        };
        assert_eq!(fatal.outcome(), Outcome::Unknown);
        assert!(!fatal.is_retryable(), "a failed node is not retried");
        assert!(fatal.to_string().contains("must be restarted"), "{fatal}");
    }

    /// A read learns that it changed nothing: `with_outcome` rewrites the outcome of the
    /// errors that carry one and leaves final answers alone.
    #[test]
    fn with_outcome_rewrites_only_errors_that_carry_one() {
        let timeout = RequestError::Timeout {
            deadline_ms: 5,
            outcome: Outcome::Unknown,
        };
        assert_eq!(
            timeout.with_outcome(Outcome::NotApplied).outcome(),
            Outcome::NotApplied
        );
        assert_eq!(
            RequestError::Internal("bug".into())
                .with_outcome(Outcome::NotApplied)
                .outcome(),
            Outcome::Unknown
        );
        assert_eq!(
            RequestError::unavailable("x", Outcome::Unknown).reason(),
            "x"
        );
    }
}
