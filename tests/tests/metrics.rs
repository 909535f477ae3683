//! `GET /metrics` on the node's port answers in the Prometheus text format with the term,
//! leadership, indices, request counts by operation and result, and latency histograms.

use std::io::{Read, Write};
use std::net::TcpStream;

use dbadger::{Error, ReadPreference};
use dbadger_tests::start_cluster;

fn scrape(addr: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: dbadger\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

/// The value of the first sample line starting with `prefix`.
fn sample(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no sample {prefix} in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_on_the_node_port() {
    let nodes = start_cluster(1).await;
    let db = &nodes[0].db;
    for i in 0..5 {
        db.set(format!("k{i}"), b"v").await.expect("set");
    }
    assert_eq!(
        db.get(b"missing", ReadPreference::Leader).await,
        Err(Error::NotFound)
    );
    let addr = db.addr().to_owned();
    let text = tokio::task::spawn_blocking(move || scrape(&addr))
        .await
        .expect("scrape");
    assert_eq!(
        sample(
            &text,
            r#"dbadger_requests_total{operation="set",result="ok"}"#
        ),
        5.0
    );
    assert_eq!(
        sample(
            &text,
            r#"dbadger_requests_total{operation="get",result="not_found"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(&text, r#"dbadger_request_seconds_count{operation="set"}"#),
        5.0
    );
    assert!(sample(&text, "dbadger_apply_seconds_count") >= 5.0);
    assert_eq!(sample(&text, "dbadger_is_leader"), 1.0);
    assert!(sample(&text, "dbadger_term") >= 1.0);
    assert!(sample(&text, "dbadger_applied_index") >= 6.0);
    assert!(sample(&text, "dbadger_committed_index") >= 6.0);
    assert_eq!(sample(&text, "dbadger_members"), 1.0);
    db.close().await;
}
