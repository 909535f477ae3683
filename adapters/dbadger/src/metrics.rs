//! Prometheus metrics of one node, served at `GET /metrics` on the node's port.
//!
//! Counters and histograms are updated as requests and applies happen; gauges (term, leader,
//! indices) are read from openraft's metrics when scraped, so they are never stale.
// The simulator build has no HTTP `/metrics` page, so the exposition side is unused there.
#![cfg_attr(madsim, allow(dead_code))]

use std::sync::Arc;
use std::time::Duration;

use dbadger_core::{RequestError, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::node_status::NodeStatus;

/// Labels of a finished request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: &'static str,
    result: &'static str,
}

/// Labels of a request's latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

/// Latency buckets from 50 µs to about 13 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 19))
}

/// The metrics of one node.
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<OperationLabels, Histogram, fn() -> Histogram>,
    apply_seconds: Histogram,
    term: Gauge,
    is_leader: Gauge,
    committed_index: Gauge,
    applied_index: Gauge,
    last_log_index: Gauge,
    snapshot_index: Gauge,
    purged_index: Gauge,
    log_entries: Gauge,
    members: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// The result label of a request's outcome. A `get` of a missing key succeeds as a request but
/// is counted as `not_found`, the answer its caller sees.
fn result_label(outcome: &Result<Response, RequestError>) -> &'static str {
    match outcome {
        Ok(Response::Value(None)) => "not_found",
        Ok(_) => "ok",
        Err(RequestError::NotFound) => "not_found",
        Err(RequestError::InvalidArgument(_)) => "invalid_argument",
        Err(RequestError::Unavailable { .. }) => "unavailable",
        Err(RequestError::Timeout { .. }) => "timeout",
        Err(RequestError::StorageFull { .. }) => "storage_full",
        Err(RequestError::ShuttingDown { .. }) => "shutting_down",
        Err(RequestError::UnknownMember { .. }) => "unknown_member",
        Err(RequestError::Refused { .. }) => "refused",
        Err(RequestError::UnknownSnapshot { .. }) => "unknown_snapshot",
        Err(RequestError::ResponseTooLarge { .. }) => "response_too_large",
        Err(_) => "internal",
    }
}

/// Gauges can hold i64; indices and terms never come near that.
fn gauge_value(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Metrics {
    pub(crate) fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("dbadger");
        let requests = Family::<RequestLabels, Counter>::default();
        let request_seconds =
            Family::<OperationLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram as fn() -> Histogram,
            );
        let apply_seconds = latency_histogram();
        registry.register(
            "requests",
            "Client requests by operation and result",
            requests.clone(),
        );
        registry.register(
            "request_seconds",
            "Client request latency by operation",
            request_seconds.clone(),
        );
        registry.register(
            "apply_seconds",
            "Time to apply one batch of committed entries",
            apply_seconds.clone(),
        );
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let gauge = Gauge::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        let term = gauge(&mut registry, "term", "Current Raft term");
        let is_leader = gauge(&mut registry, "is_leader", "1 if this node is the leader");
        let committed_index = gauge(
            &mut registry,
            "committed_index",
            "Last committed log index known here",
        );
        let applied_index = gauge(
            &mut registry,
            "applied_index",
            "Last log index applied to the state machine",
        );
        let last_log_index = gauge(
            &mut registry,
            "last_log_index",
            "Last log index stored here",
        );
        let snapshot_index = gauge(
            &mut registry,
            "snapshot_index",
            "Last log index covered by the current snapshot",
        );
        let purged_index = gauge(
            &mut registry,
            "purged_index",
            "Last log index removed from the log",
        );
        let log_entries = gauge(
            &mut registry,
            "log_entries",
            "Entries in the log (last minus purged)",
        );
        let members = gauge(
            &mut registry,
            "members",
            "Members of the cluster (voters and learners)",
        );
        Arc::new(Metrics {
            registry,
            requests,
            request_seconds,
            apply_seconds,
            term,
            is_leader,
            committed_index,
            applied_index,
            last_log_index,
            snapshot_index,
            purged_index,
            log_entries,
            members,
        })
    }

    /// Counts a finished request and its latency.
    pub(crate) fn record_request(
        &self,
        operation: &'static str,
        outcome: &Result<Response, RequestError>,
        elapsed: Duration,
    ) {
        let result = result_label(outcome);
        self.requests
            .get_or_create(&RequestLabels { operation, result })
            .inc();
        self.request_seconds
            .get_or_create(&OperationLabels { operation })
            .observe(elapsed.as_secs_f64());
    }

    /// Records how long applying one batch took.
    pub(crate) fn record_apply(&self, elapsed: Duration) {
        self.apply_seconds.observe(elapsed.as_secs_f64());
    }

    /// The Prometheus text exposition, with gauges taken from `status`.
    pub(crate) fn render(&self, status: &NodeStatus) -> String {
        self.term.set(gauge_value(status.term));
        self.is_leader.set(i64::from(status.is_leader));
        self.committed_index
            .set(gauge_value(status.committed_index));
        self.applied_index.set(gauge_value(status.applied_index));
        self.last_log_index.set(gauge_value(status.last_log_index));
        self.snapshot_index.set(gauge_value(status.snapshot_index));
        self.purged_index.set(gauge_value(status.purged_index));
        self.log_entries.set(gauge_value(
            status.last_log_index.saturating_sub(status.purged_index),
        ));
        self.members.set(gauge_value(status.members.len() as u64));
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
