//! What the leader knows about reaching one peer: after a failed attempt the next waits a
//! bounded, exponentially growing, jittered delay, and the peer's state changes (reachable to
//! unreachable and back) are logged once each, not per attempt.
//!
//! Without this a dead follower costs the leader a core: openraft's replication loop retries at
//! once whenever a call fails before it has pulled a request (a refused connection fails
//! first), and openraft's own backoff only paces requests it pulls.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use dbadger_core::raft_types::NodeId;
use dbadger_proto::v1::raft_client::RaftClient;
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};

use crate::rpc_failure::Failure;

/// How peers are called and retried; part of the node's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerOptions {
    /// The longest a connection attempt may take.
    pub connect_timeout: Duration,
    /// The least a Raft RPC waits for its answer (see [`crate::GrpcNetwork::new`]).
    pub min_rpc_timeout: Duration,
    /// The delay before the first retry after a failed attempt; it doubles per failure.
    pub retry_min: Duration,
    /// The longest delay between attempts to reach an unreachable peer.
    pub retry_max: Duration,
}

impl Default for PeerOptions {
    /// The node configuration's defaults: connect within 1 s, wait at least 1 s for an
    /// answer, retry an unreachable peer after 25 ms doubling up to 1 s.
    fn default() -> Self {
        PeerOptions {
            connect_timeout: Duration::from_secs(1),
            min_rpc_timeout: Duration::from_secs(1),
            retry_min: Duration::from_millis(25),
            retry_max: Duration::from_secs(1),
        }
    }
}

/// The delay before attempt `failures + 1`, after `failures` consecutive failures (at least
/// one): `retry_min` doubled per further failure, capped at `retry_max`, then scaled into
/// `[1/2, 1]` of itself by `jitter` (any value; its low bits pick the point), so that peers
/// that failed together do not retry together.
pub(crate) fn retry_delay(
    failures: u32,
    retry_min: Duration,
    retry_max: Duration,
    jitter: u64,
) -> Duration {
    let doublings = failures.saturating_sub(1).min(31);
    let grown = retry_min.saturating_mul(1 << doublings).min(retry_max);
    let fraction = 0.5 + (jitter % 1024) as f64 / 2046.0;
    grown.mul_f64(fraction)
}

/// A deterministic jitter source (no OS randomness, so the simulator stays reproducible):
/// a mix of the peer and the attempt.
fn jitter(target: NodeId, failures: u32) -> u64 {
    let mut x = target ^ (u64::from(failures) << 32) ^ 0x9E37_79B9_7F4A_7C15;
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[derive(Debug)]
struct LinkState {
    /// The address the peer is reached at (its membership entry's).
    addr: String,
    /// How to connect to it (or why it cannot be).
    endpoint: Result<Endpoint, String>,
    /// The connection every client of the peer shares; `None` until the next call makes one.
    channel: Option<RaftClient<Channel>>,
    /// Consecutive failed attempts; 0 while the peer answers.
    failures: u32,
    /// No attempt before this instant.
    next_attempt: Option<Instant>,
    /// When the current run of failures began.
    down_since: Option<Instant>,
}

/// One peer's connection and retry state, shared by every client of it (replication,
/// heartbeats, votes): one HTTP/2 connection per peer, replaced as a whole after a call
/// could not reach the peer.
#[derive(Clone, Debug)]
pub(crate) struct PeerLink {
    target: NodeId,
    options: PeerOptions,
    state: Arc<Mutex<LinkState>>,
}

impl PeerLink {
    pub(crate) fn new(
        target: NodeId,
        addr: &str,
        endpoint: Result<Endpoint, String>,
        options: PeerOptions,
    ) -> PeerLink {
        PeerLink {
            target,
            options,
            state: Arc::new(Mutex::new(LinkState {
                addr: addr.to_owned(),
                endpoint,
                channel: None,
                failures: 0,
                next_attempt: None,
                down_since: None,
            })),
        }
    }

    /// The peer's address this link connects to.
    pub(crate) fn addr(&self) -> String {
        self.state().addr.clone()
    }

    /// Points the link (and every client sharing it, the running replication stream's too)
    /// at the peer's new address: the old connection is dropped and the backoff forgotten.
    pub(crate) fn readdress(&self, addr: &str, endpoint: Result<Endpoint, String>) {
        let mut state = self.state();
        state.addr = addr.to_owned();
        state.endpoint = endpoint;
        state.channel = None;
        state.failures = 0;
        state.next_attempt = None;
    }

    /// A client on the peer's current connection, making one (lazily) if there is none.
    pub(crate) fn client(&self) -> Result<RaftClient<Channel>, Failure> {
        let mut state = self.state();
        let endpoint = match &state.endpoint {
            Ok(endpoint) => endpoint.clone(),
            Err(reason) => return Err(Failure::Unreachable(reason.clone())),
        };
        Ok(state
            .channel
            .get_or_insert_with(|| RaftClient::new(endpoint.connect_lazy()))
            .clone())
    }

    fn state(&self) -> MutexGuard<'_, LinkState> {
        // Plain counters and instants: a panic elsewhere cannot leave them torn.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits until the peer may be tried again (at once while it answers).
    pub(crate) async fn wait_turn(&self) {
        let next = self.state().next_attempt;
        if let Some(next) = next {
            tokio::time::sleep_until(next).await;
        }
    }

    /// Records how an attempt went: unreachable, or answered (even with an error).
    pub(crate) fn observe<T>(&self, outcome: &Result<T, Failure>) {
        match outcome {
            Err(Failure::Unreachable(reason)) => self.unreachable(reason),
            Ok(_) | Err(Failure::Network(_)) => self.answered(),
        }
    }

    /// The peer answered: attempts go out at once again.
    pub(crate) fn answered(&self) {
        let mut state = self.state();
        if let Some(since) = state.down_since.take() {
            tracing::info!(
                peer = self.target,
                down_ms = since.elapsed().as_millis() as u64,
                "peer reachable again"
            );
        }
        state.failures = 0;
        state.next_attempt = None;
    }

    /// An attempt could not reach the peer: the next waits longer, on a new connection. (A
    /// connection whose calls timed out may sit in TCP's retransmission backoff for seconds
    /// after the network heals; a new one starts afresh.)
    pub(crate) fn unreachable(&self, reason: &str) {
        let mut state = self.state();
        state.channel = None;
        state.failures = state.failures.saturating_add(1);
        let delay = retry_delay(
            state.failures,
            self.options.retry_min,
            self.options.retry_max,
            jitter(self.target, state.failures),
        );
        let now = Instant::now();
        state.next_attempt = Some(now + delay);
        if state.down_since.is_none() {
            state.down_since = Some(now);
            tracing::warn!(
                peer = self.target,
                reason,
                retry_max_ms = self.options.retry_max.as_millis() as u64,
                "peer unreachable; retrying with backoff"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_millis(25);
    const MAX: Duration = Duration::from_secs(1);

    #[test]
    fn the_delay_doubles_from_the_minimum() {
        let top = 1023; // the largest jitter fraction, 1
        assert_eq!(retry_delay(1, MIN, MAX, top), MIN);
        assert_eq!(retry_delay(2, MIN, MAX, top), MIN * 2);
        assert_eq!(retry_delay(4, MIN, MAX, top), MIN * 8);
    }

    #[test]
    fn the_delay_never_passes_the_maximum() {
        for failures in [6, 7, 20, 31, 32, u32::MAX] {
            assert!(retry_delay(failures, MIN, MAX, 1023) <= MAX, "{failures}");
        }
        assert_eq!(retry_delay(u32::MAX, MIN, MAX, 1023), MAX);
    }

    #[test]
    fn jitter_keeps_the_delay_between_half_and_all_of_it() {
        for seed in 0..2000 {
            let delay = retry_delay(3, MIN, MAX, jitter(seed, 3));
            assert!(delay >= MIN * 2 && delay <= MIN * 4, "{delay:?}");
        }
        let spread: std::collections::BTreeSet<_> = (1..=5)
            .map(|peer| retry_delay(3, MIN, MAX, jitter(peer, 3)))
            .collect();
        assert!(
            spread.len() > 1,
            "peers that failed together retry together"
        );
    }

    #[test]
    fn a_failure_zero_is_treated_as_the_first() {
        assert_eq!(retry_delay(0, MIN, MAX, 1023), MIN);
    }
}
