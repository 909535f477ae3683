//! The README's TLS sequence with `dbadger certs`, and the standard gRPC conventions a probe or
//! grpcurl relies on: `grpc.health.v1` answers SERVING on a ready node, and server reflection
//! lists the services.

mod common;

use common::{Node, result, run, three_nodes};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

/// `dbadger certs` writes a CA and certificates; three nodes started with them form a cluster;
/// the client commands with the client certificate read and write; without one they get
/// nothing (exit 5).
#[test]
fn the_tls_sequence_with_dbadger_certs() {
    let root = tempfile::tempdir().expect("dir");
    let certs = root.path().join("certs");
    let certs_dir = certs.to_str().expect("utf-8 path");
    let written = run(&["certs", "--dir", certs_dir]);
    assert_eq!(written.status.code(), Some(0), "{written:?}");
    let again = run(&["certs", "--dir", certs_dir]);
    assert_ne!(
        again.status.code(),
        Some(0),
        "existing files are kept without --force"
    );
    let file = |name: &str| certs.join(name).to_string_lossy().into_owned();
    let nodes = three_nodes(root.path(), |i| {
        let name = format!("node{}", i + 1);
        vec![
            "--ca".to_owned(),
            file("ca.pem"),
            "--cert".to_owned(),
            file(&format!("{name}.pem")),
            "--key".to_owned(),
            file(&format!("{name}-key.pem")),
        ]
    });
    let (ca, cert, key) = (file("ca.pem"), file("client.pem"), file("client-key.pem"));
    let tls = ["--ca", &ca, "--cert", &cert, "--key", &key];
    let mut put = vec!["put", "secret", "value", "--endpoints", &nodes[2].addr];
    put.extend(tls);
    assert_eq!(result(&run(&put)), (0, "OK\n".to_owned()));
    let mut get = vec!["get", "secret", "--endpoints", &nodes[0].addr];
    get.extend(tls);
    assert_eq!(result(&run(&get)), (0, "secret\nvalue\n".to_owned()));
    let plain = run(&[
        "get",
        "secret",
        "--endpoints",
        &nodes[0].addr,
        "--timeout",
        "2s",
    ]);
    assert_eq!(plain.status.code(), Some(5), "{plain:?}");
}

/// Health says SERVING for the node and for `dbadger.v1.Kv`; reflection lists the dbadger
/// services and the health service.
#[test]
fn health_and_reflection_answer() {
    let root = tempfile::tempdir().expect("dir");
    let node = Node::start(&root.path().join("n"), "127.0.0.1:0", &["--bootstrap"]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let guard = std::time::Duration::from_secs(30);
        tokio::time::timeout(guard, async {
            let channel = tonic::transport::Channel::from_shared(format!("http://{}", node.addr))
                .expect("address")
                .connect()
                .await
                .expect("connect");
            let mut health = HealthClient::new(channel.clone());
            for service in ["", "dbadger.v1.Kv", "dbadger.v1.Cluster"] {
                let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
                loop {
                    let status = health
                        .check(HealthCheckRequest {
                            service: service.to_owned(),
                        })
                        .await
                        .expect("health check")
                        .into_inner()
                        .status;
                    if status == ServingStatus::Serving as i32 {
                        break;
                    }
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "{service:?} not serving"
                    );
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
            let mut reflection = ServerReflectionClient::new(channel);
            let request = ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            };
            let mut answers = reflection
                .server_reflection_info(futures_util::stream::iter([request]))
                .await
                .expect("reflection")
                .into_inner();
            let answer = answers
                .message()
                .await
                .expect("an answer")
                .expect("a message");
            let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
                panic!("not a service list: {answer:?}");
            };
            let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
            for wanted in [
                "dbadger.v1.Kv",
                "dbadger.v1.Cluster",
                "grpc.health.v1.Health",
            ] {
                assert!(
                    names.iter().any(|name| name == wanted),
                    "{wanted} missing from {names:?}"
                );
            }
        })
        .await
        .expect("probes answer within the guard");
    });
}
