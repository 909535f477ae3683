//! The standard `grpc.health.v1` service (tonic-health), so that orchestrators and probes can
//! ask a node whether it serves: the overall status (service `""`) and `dbadger.v1.Kv` are
//! SERVING while the node is ready ([`crate::NodeStatus::is_ready`]: it knows a leader and has
//! caught up with what it knows committed) and NOT_SERVING otherwise; `dbadger.v1.Cluster` is always SERVING, since status
//! and membership answer also on a node that is not ready. Real sockets only.

use std::sync::Arc;

use dbadger_core::storage::StateMachineStore;
use openraft::async_runtime::watch::WatchReceiver;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::node::Node;

/// The services whose health follows readiness.
const READY_SERVICES: [&str; 2] = ["", "dbadger.v1.Kv"];

/// Keeps the health service's statuses in step with the node's readiness until the node stops.
pub(crate) async fn report_readiness<S: StateMachineStore>(
    node: Arc<Node<S>>,
    reporter: HealthReporter,
) {
    reporter
        .set_service_status("dbadger.v1.Cluster", ServingStatus::Serving)
        .await;
    // Readiness follows the leader (server metrics) and the commit and applied indexes (data
    // metrics); the full metrics would wake this task on every step of the Raft core.
    let mut server = node.raft.server_metrics();
    let mut data = node.raft.data_metrics();
    let mut reported = None;
    loop {
        let ready = node.is_ready();
        if reported != Some(ready) {
            let status = if ready {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            for service in READY_SERVICES {
                reporter.set_service_status(service, status).await;
            }
            reported = Some(ready);
        }
        let changed = tokio::select! {
            changed = server.changed() => changed,
            changed = data.changed() => changed,
        };
        if changed.is_err() {
            // openraft stopped: the node serves nothing any more.
            for service in READY_SERVICES {
                reporter
                    .set_service_status(service, ServingStatus::NotServing)
                    .await;
            }
            return;
        }
    }
}
