//! When a client command moves on to the next endpoint: the policy as a pure function.
//!
//! An endpoint that cannot be reached, or that answers that it certainly did not apply the
//! request (no leader there, not ready), is skipped for the next one. A write whose outcome is
//! unknown is never sent to another endpoint: the node may have applied it, and sending it again
//! could apply it twice. Reads change nothing and move on after any retryable failure.

use dbadger_core::{Outcome, RequestError};

/// Whether a request changes data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Effect {
    /// A read or a status query.
    Read,
    /// A write or a membership change.
    Write,
}

/// What to do after an endpoint failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failover {
    /// Send the same request to the next endpoint.
    NextEndpoint,
    /// Report this failure.
    Stop,
}

/// The decision after `error` from one endpoint; `connected` is false when the endpoint could
/// not even be connected to (nothing was sent).
pub(crate) fn after_failure(effect: Effect, connected: bool, error: &RequestError) -> Failover {
    if !connected {
        return Failover::NextEndpoint;
    }
    let movable = match effect {
        Effect::Read => error.is_retryable(),
        Effect::Write => error.is_safe_to_retry(),
    };
    if movable && !matches!(error, RequestError::Timeout { .. }) {
        Failover::NextEndpoint
    } else {
        Failover::Stop
    }
}

/// Whether the failure left a write's outcome unknown.
pub(crate) fn may_have_applied(effect: Effect, error: &RequestError) -> bool {
    effect == Effect::Write && error.outcome() == Outcome::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unavailable(outcome: Outcome) -> RequestError {
        RequestError::unavailable("no leader", outcome)
    }

    /// An endpoint that could not be connected to is always skipped.
    #[test]
    fn unreachable_endpoints_are_skipped() {
        for effect in [Effect::Read, Effect::Write] {
            assert_eq!(
                after_failure(effect, false, &RequestError::NotFound),
                Failover::NextEndpoint
            );
        }
    }

    /// A write moves on only when it certainly did not apply; a read after any retryable
    /// failure but a deadline (which is the caller's whole budget).
    #[test]
    fn writes_move_on_only_when_not_applied() {
        assert_eq!(
            after_failure(Effect::Write, true, &unavailable(Outcome::NotApplied)),
            Failover::NextEndpoint
        );
        assert_eq!(
            after_failure(Effect::Write, true, &unavailable(Outcome::Unknown)),
            Failover::Stop
        );
        assert_eq!(
            after_failure(Effect::Read, true, &unavailable(Outcome::Unknown)),
            Failover::NextEndpoint
        );
        let deadline = RequestError::Timeout {
            deadline_ms: 1,
            outcome: Outcome::NotApplied,
        };
        assert_eq!(after_failure(Effect::Read, true, &deadline), Failover::Stop);
        assert_eq!(
            after_failure(Effect::Read, true, &RequestError::NotFound),
            Failover::Stop
        );
        assert!(may_have_applied(
            Effect::Write,
            &unavailable(Outcome::Unknown)
        ));
        assert!(!may_have_applied(
            Effect::Read,
            &unavailable(Outcome::Unknown)
        ));
    }
}
