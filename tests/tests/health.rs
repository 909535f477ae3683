//! The standard `grpc.health.v1` service as a load balancer sees it: a node that is ready stays
//! SERVING while clients write, on the leader and on a follower.

use std::time::Duration;

use dbadger_tests::{follower, guarded, start_cluster};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// The statuses one `Watch` stream reports for the key-value service, collected until `stop`.
async fn watch_statuses(
    addr: String,
    mut stop: tokio::sync::oneshot::Receiver<()>,
    first_serving: tokio::sync::oneshot::Sender<()>,
) -> Vec<ServingStatus> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("an address")
        .connect()
        .await
        .expect("the health service answers");
    let mut client = HealthClient::new(channel);
    let mut stream = client
        .watch(HealthCheckRequest {
            service: "dbadger.v1.Kv".to_owned(),
        })
        .await
        .expect("a watch stream")
        .into_inner();
    let mut statuses = Vec::new();
    let mut first_serving = Some(first_serving);
    loop {
        tokio::select! {
            message = stream.message() => {
                let response = message.expect("the stream stays up").expect("the stream stays open");
                let status = response.status();
                if status == ServingStatus::Serving
                    && let Some(first) = first_serving.take()
                {
                    let _ = first.send(());
                }
                if first_serving.is_none() {
                    statuses.push(status);
                }
            }
            _ = &mut stop => return statuses,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ready_node_stays_serving_while_clients_write() {
    guarded(Duration::from_secs(60), async {
        let nodes = start_cluster(3).await;
        let leader = nodes
            .iter()
            .find(|node| node.db.is_leader())
            .expect("a leader");
        let watched = [leader, follower(&nodes)];
        let mut watchers = Vec::new();
        for node in watched {
            let (stop, stopped) = tokio::sync::oneshot::channel();
            let (serving, first_serving) = tokio::sync::oneshot::channel();
            let watcher = tokio::spawn(watch_statuses(node.db.addr().to_owned(), stopped, serving));
            first_serving.await.expect("the node becomes SERVING");
            watchers.push((stop, watcher));
        }
        // Sequential and concurrent writes: each commit runs ahead of its apply for a moment.
        for n in 0..150u32 {
            leader
                .db
                .set(format!("k{n}"), b"v")
                .await
                .expect("the write applies");
        }
        let writers: Vec<_> = (0..8u32)
            .map(|writer| {
                let db = leader.db.clone();
                tokio::spawn(async move {
                    for n in 0..40u32 {
                        db.set(format!("w{writer}-{n}"), b"v")
                            .await
                            .expect("the write applies");
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.await.expect("the writer finishes");
        }
        for (index, (stop, watcher)) in watchers.into_iter().enumerate() {
            let _ = stop.send(());
            let statuses = watcher.await.expect("the watcher finishes");
            assert!(
                statuses
                    .iter()
                    .all(|status| *status == ServingStatus::Serving),
                "node {index} of the watched pair left SERVING under writes: {statuses:?}"
            );
        }
    })
    .await;
}
