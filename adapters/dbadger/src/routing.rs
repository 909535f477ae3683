//! The routing policy, as small pure functions: after one attempt at a request failed to give
//! an answer, what to do next (forward to the leader, wait for a leader and try again, or give
//! up with an error that says what became of the request), and how much of a client's deadline
//! the node may spend.
//!
//! The node's request loop (`requests.rs`) feeds these functions what it saw and carries out
//! what they decide. They read no clock and touch no network, so every case is a unit test.
//!
//! The rules:
//! - A node that does not lead forwards to the leader it knows (unless it is itself serving a
//!   forwarded request: then it tells the sender who leads, and the sender re-routes).
//! - A write is sent again only when it certainly was not applied: the connection was refused,
//!   the other node named another leader, or it answered with the typed outcome "not applied".
//!   Any other failure after sending may follow a proposal, and a second proposal could apply
//!   the write twice (a compare-and-set would then report failure for a change it made). Reads
//!   and membership steps are idempotent and are retried whatever the failure.
//! - Without a usable leader the node waits for one, but not for ever: once it has been without
//!   one for the patience (one election timeout) the request fails with `Unavailable`, not
//!   applied, well before a long client deadline.

use std::time::Duration;

use dbadger_core::raft_types::NodeId;
use dbadger_core::{Outcome, RequestError};

/// How long a request waits between retries while the cluster changes leader or membership.
pub(crate) const LEADER_POLL: Duration = Duration::from_millis(20);

/// What a request is, as far as retrying it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RequestKind {
    /// A read: changes nothing, so every failure is "not applied" and it may always be retried.
    Read,
    /// A write: may be sent again only when it certainly was not applied.
    Write,
    /// A membership step: idempotent (adding a member twice or removing it twice changes
    /// nothing more), so it may be retried, but its outcome is reported as it is.
    Membership,
}

/// Whether a forwarded request may have reached the other node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// It certainly never left this node (bad address, connection refused).
    NotSent,
    /// It may have arrived, and a write may have been proposed there.
    MaybeArrived,
}

/// What an attempt ran into instead of an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Setback {
    /// This node does not lead. `leader` is the leader openraft names when this node can
    /// forward to it (known, not this node, with an address); `named` is whoever openraft
    /// named, usable or not.
    NotLeader {
        /// The leader to forward to, with its address.
        leader: Option<(NodeId, String)>,
        /// The node openraft named as leader, if any.
        named: Option<NodeId>,
    },
    /// Forwarding to `leader` failed with `error`.
    ForwardFailed {
        /// The node the request was sent to.
        leader: (NodeId, String),
        /// What it answered, or what the transport said.
        error: RequestError,
        /// Whether the request may have arrived.
        delivery: Delivery,
    },
}

/// The time the policy decides with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Patience {
    /// How long this request has been without a usable leader so far.
    pub(crate) waited: Duration,
    /// How long a request may wait for a leader before it fails: one election timeout.
    pub(crate) limit: Duration,
    /// What is left of the request's deadline.
    pub(crate) remaining: Duration,
}

impl Patience {
    fn exhausted(&self) -> bool {
        self.waited >= self.limit || self.remaining < LEADER_POLL
    }
}

/// What to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Send the request to this node.
    Forward(NodeId, String),
    /// Wait (a little) for openraft to know a leader other than `stale`, then try again.
    AwaitLeader {
        /// The leader that could not be used.
        stale: Option<NodeId>,
    },
    /// Give up with this error.
    Fail(RequestError),
}

/// What to do after `setback`, for a request of `kind`; `may_forward` is false while serving a
/// request another node forwarded here (it is never forwarded twice).
pub(crate) fn next_step(
    kind: RequestKind,
    may_forward: bool,
    setback: Setback,
    patience: Patience,
) -> Next {
    match setback {
        Setback::NotLeader {
            leader: Some((id, addr)),
            ..
        } if may_forward => Next::Forward(id, addr),
        Setback::NotLeader {
            leader: Some((id, addr)),
            ..
        } => Next::Fail(RequestError::Unavailable {
            reason: "this node does not lead".to_owned(),
            leader: Some((id, addr)),
            outcome: Outcome::NotApplied,
        }),
        Setback::NotLeader {
            leader: None,
            named,
        } => {
            if patience.exhausted() {
                Next::Fail(no_leader(patience.waited))
            } else {
                Next::AwaitLeader { stale: named }
            }
        }
        Setback::ForwardFailed {
            leader,
            error,
            delivery,
        } => after_failed_forward(kind, leader, error, delivery, patience),
    }
}

fn after_failed_forward(
    kind: RequestKind,
    (tried, addr): (NodeId, String),
    error: RequestError,
    delivery: Delivery,
    patience: Patience,
) -> Next {
    let outcome = match (kind, delivery) {
        (RequestKind::Read, _) | (_, Delivery::NotSent) => Outcome::NotApplied,
        (_, Delivery::MaybeArrived) => error.outcome(),
    };
    let error = error.with_outcome(outcome);
    let may_resend = kind != RequestKind::Write || outcome == Outcome::NotApplied;
    if matches!(error, RequestError::Timeout { .. }) || !error.is_retryable() || !may_resend {
        return Next::Fail(error);
    }
    if let Some((leader, leader_addr)) = redirect(&error, tried) {
        // Bounded like any other wait: two nodes that each name the other must not bounce a
        // request between them until its deadline.
        return if patience.exhausted() {
            Next::Fail(error)
        } else {
            Next::Forward(leader, leader_addr)
        };
    }
    if patience.exhausted() {
        return Next::Fail(with_leader_hint(error, tried, &addr));
    }
    Next::AwaitLeader { stale: Some(tried) }
}

/// The leader a node named when it answered that it does not lead, if it is another one.
fn redirect(error: &RequestError, tried: NodeId) -> Option<(NodeId, String)> {
    match error {
        RequestError::Unavailable {
            leader: Some((leader, addr)),
            ..
        } if *leader != tried => Some((*leader, addr.clone())),
        _ => None,
    }
}

fn with_leader_hint(error: RequestError, leader: NodeId, addr: &str) -> RequestError {
    match error {
        RequestError::Unavailable {
            reason,
            leader: None,
            outcome,
        } => RequestError::Unavailable {
            reason,
            leader: Some((leader, addr.to_owned())),
            outcome,
        },
        other => other,
    }
}

/// No leader appeared in time: nothing was proposed.
pub(crate) fn no_leader(waited: Duration) -> RequestError {
    RequestError::unavailable(
        format!("no leader within {} ms", waited.as_millis()),
        Outcome::NotApplied,
    )
}

/// How much of a client's deadline (from its `grpc-timeout`) the node spends on a request: a
/// margin less, so that the node's typed `DEADLINE_EXCEEDED` reaches the client before the
/// client's own timer ends the call with an untyped one; never more than the node's own
/// request timeout.
pub(crate) fn deadline_budget(
    client_timeout: Option<Duration>,
    node_timeout: Duration,
) -> Duration {
    match client_timeout {
        None => node_timeout,
        Some(timeout) => {
            let margin = (timeout / 5).clamp(Duration::from_millis(10), Duration::from_millis(500));
            timeout.saturating_sub(margin).min(node_timeout)
        }
    }
}

/// Whether a leader whose last quorum acknowledgement is `silent_for` old (or that has had none
/// yet, for `silent_for` since the request began) should refuse or abandon a request: it has
/// heard from no quorum for longer than the patience.
pub(crate) fn quorum_lost(silent_for: Duration, patience: Duration) -> bool {
    silent_for > patience
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_millis(600);

    fn patience(waited_ms: u64, remaining_ms: u64) -> Patience {
        Patience {
            waited: Duration::from_millis(waited_ms),
            limit: LIMIT,
            remaining: Duration::from_millis(remaining_ms),
        }
    }

    fn leader() -> (NodeId, String) {
        (2, "10.0.0.2:7400".to_owned())
    }

    fn failed(error: RequestError, delivery: Delivery) -> Setback {
        Setback::ForwardFailed {
            leader: leader(),
            error,
            delivery,
        }
    }

    fn lost_connection() -> RequestError {
        RequestError::unavailable("the connection failed", Outcome::Unknown)
    }

    fn refused() -> RequestError {
        RequestError::unavailable("refused", Outcome::NotApplied)
    }

    /// A follower forwards to the leader it knows; serving a forwarded request, it names the
    /// leader instead, not applied.
    #[test]
    fn a_known_leader_is_forwarded_to_or_named() {
        let setback = Setback::NotLeader {
            leader: Some(leader()),
            named: Some(2),
        };
        assert_eq!(
            next_step(RequestKind::Write, true, setback.clone(), patience(0, 5000)),
            Next::Forward(2, "10.0.0.2:7400".to_owned())
        );
        match next_step(RequestKind::Write, false, setback, patience(0, 5000)) {
            Next::Fail(error) => {
                assert!(error.is_safe_to_retry(), "{error:?}");
                assert_eq!(redirect(&error, 9), Some(leader()));
            }
            other => panic!("{other:?}"),
        }
    }

    /// Without a usable leader a request waits, then gives up after the patience with a
    /// not-applied Unavailable.
    #[test]
    fn no_leader_waits_then_gives_up_not_applied() {
        let setback = Setback::NotLeader {
            leader: None,
            named: Some(1),
        };
        assert_eq!(
            next_step(
                RequestKind::Write,
                true,
                setback.clone(),
                patience(100, 5000)
            ),
            Next::AwaitLeader { stale: Some(1) }
        );
        for late in [patience(600, 5000), patience(0, 10)] {
            match next_step(RequestKind::Write, true, setback.clone(), late) {
                Next::Fail(error) => assert!(error.is_safe_to_retry(), "{error:?}"),
                other => panic!("{other:?}"),
            }
        }
    }

    /// A write whose connection broke after sending is not sent again: it fails, outcome
    /// unknown. A read in the same case retries, and is not applied.
    #[test]
    fn a_lost_write_is_unknown_and_a_lost_read_is_retried() {
        match next_step(
            RequestKind::Write,
            true,
            failed(lost_connection(), Delivery::MaybeArrived),
            patience(0, 5000),
        ) {
            Next::Fail(error) => {
                assert_eq!(error.outcome(), Outcome::Unknown);
                assert!(error.is_retryable() && !error.is_safe_to_retry());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            next_step(
                RequestKind::Read,
                true,
                failed(lost_connection(), Delivery::MaybeArrived),
                patience(0, 5000)
            ),
            Next::AwaitLeader { stale: Some(2) }
        );
        match next_step(
            RequestKind::Read,
            true,
            failed(lost_connection(), Delivery::MaybeArrived),
            patience(700, 5000),
        ) {
            Next::Fail(error) => assert_eq!(error.outcome(), Outcome::NotApplied),
            other => panic!("{other:?}"),
        }
    }

    /// A write that never left, or that the leader refused with a typed "not applied", is sent
    /// again after a pause; past the patience it fails, still not applied, with the leader it
    /// tried as a hint.
    #[test]
    fn a_write_certainly_not_applied_is_retried() {
        for (error, delivery) in [
            (refused(), Delivery::NotSent),
            (lost_connection(), Delivery::NotSent),
            (
                RequestError::unavailable("no quorum before proposing", Outcome::NotApplied),
                Delivery::MaybeArrived,
            ),
        ] {
            assert_eq!(
                next_step(
                    RequestKind::Write,
                    true,
                    failed(error.clone(), delivery),
                    patience(0, 5000)
                ),
                Next::AwaitLeader { stale: Some(2) }
            );
            match next_step(
                RequestKind::Write,
                true,
                failed(error, delivery),
                patience(600, 5000),
            ) {
                Next::Fail(RequestError::Unavailable {
                    leader, outcome, ..
                }) => {
                    assert_eq!(outcome, Outcome::NotApplied);
                    assert_eq!(leader, Some(leader_hint()));
                }
                other => panic!("{other:?}"),
            }
        }
    }

    fn leader_hint() -> (NodeId, String) {
        leader()
    }

    /// A node that answered "I do not lead, node 3 does" did not propose the write: it goes to
    /// node 3 at once.
    #[test]
    fn a_redirect_goes_to_the_named_leader() {
        let error = RequestError::Unavailable {
            reason: "this node does not lead".to_owned(),
            leader: Some((3, "10.0.0.3:7400".to_owned())),
            outcome: Outcome::NotApplied,
        };
        assert_eq!(
            next_step(
                RequestKind::Write,
                true,
                failed(error.clone(), Delivery::MaybeArrived),
                patience(0, 5000)
            ),
            Next::Forward(3, "10.0.0.3:7400".to_owned())
        );
        match next_step(
            RequestKind::Write,
            true,
            failed(error, Delivery::MaybeArrived),
            patience(600, 5000),
        ) {
            Next::Fail(error) => assert!(error.is_safe_to_retry(), "{error:?}"),
            other => panic!("redirects stop with the patience: {other:?}"),
        }
    }

    /// A deadline that passed, and final answers (not found, invalid, a bug), end the request
    /// as they are; a read's timeout is not applied.
    #[test]
    fn timeouts_and_final_answers_end_the_request() {
        let timeout = RequestError::Timeout {
            deadline_ms: 0,
            outcome: Outcome::Unknown,
        };
        match next_step(
            RequestKind::Read,
            true,
            failed(timeout.clone(), Delivery::MaybeArrived),
            patience(0, 5000),
        ) {
            Next::Fail(error) => assert_eq!(error.outcome(), Outcome::NotApplied),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            next_step(
                RequestKind::Write,
                true,
                failed(timeout.clone(), Delivery::MaybeArrived),
                patience(0, 5000)
            ),
            Next::Fail(timeout)
        );
        for answer in [
            RequestError::NotFound,
            RequestError::UnknownMember { id: 4 },
            RequestError::Internal("bug".to_owned()),
        ] {
            assert_eq!(
                next_step(
                    RequestKind::Membership,
                    true,
                    failed(answer.clone(), Delivery::MaybeArrived),
                    patience(0, 5000)
                ),
                Next::Fail(answer)
            );
        }
    }

    /// A membership step is retried after a lost connection (it is idempotent), and keeps its
    /// unknown outcome if it gives up.
    #[test]
    fn membership_steps_retry_but_keep_their_outcome() {
        assert_eq!(
            next_step(
                RequestKind::Membership,
                true,
                failed(lost_connection(), Delivery::MaybeArrived),
                patience(0, 5000)
            ),
            Next::AwaitLeader { stale: Some(2) }
        );
        match next_step(
            RequestKind::Membership,
            true,
            failed(lost_connection(), Delivery::MaybeArrived),
            patience(600, 5000),
        ) {
            Next::Fail(error) => assert_eq!(error.outcome(), Outcome::Unknown),
            other => panic!("{other:?}"),
        }
    }

    /// The node keeps a margin of the client's deadline, a fifth within 10..=500 ms, and never
    /// exceeds its own timeout.
    #[test]
    fn the_budget_leaves_a_margin_below_the_clients_deadline() {
        let node = Duration::from_secs(5);
        let ms = Duration::from_millis;
        assert_eq!(deadline_budget(None, node), node);
        assert_eq!(deadline_budget(Some(ms(150)), node), ms(120));
        assert_eq!(deadline_budget(Some(ms(20)), node), ms(10));
        assert_eq!(deadline_budget(Some(ms(8)), node), ms(0));
        assert_eq!(deadline_budget(Some(ms(4000)), node), ms(3500));
        assert_eq!(deadline_budget(Some(ms(60_000)), node), node);
    }

    /// A leader gives up on its quorum only after the patience has passed in silence.
    #[test]
    fn quorum_is_lost_only_past_the_patience() {
        assert!(!quorum_lost(LIMIT, LIMIT));
        assert!(quorum_lost(LIMIT + Duration::from_millis(1), LIMIT));
    }
}
