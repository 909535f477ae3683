//! The Kv service used from a plain gRPC client generated from the .proto files: semantics
//! through any node, and malformed or oversize requests refused with the documented status
//! codes and a typed error detail, never a crash.

use dbadger_proto::v1::kv_client::KvClient;
use dbadger_proto::v1::{self, ErrorCode};
use dbadger_tests::start_cluster;
use tonic::Code;
use tonic::transport::Channel;

async fn client(addr: &str) -> KvClient<Channel> {
    KvClient::connect(format!("http://{addr}"))
        .await
        .expect("connect")
}

fn detail(status: &tonic::Status) -> ErrorCode {
    let detail = dbadger_tests::error_detail(status).expect("typed error detail");
    ErrorCode::try_from(detail.code).expect("known code")
}

/// Writes through one follower are read back through another, with revisions; a missing key
/// is NOT_FOUND with a KEY_NOT_FOUND detail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_grpc_client_reads_and_writes_through_any_node() {
    let nodes = start_cluster(3).await;
    let follower = nodes
        .iter()
        .find(|n| !n.db.is_leader())
        .expect("a follower");
    let other = nodes
        .iter()
        .rev()
        .find(|n| !n.db.is_leader())
        .expect("another follower");
    let mut writer = client(follower.db.addr()).await;
    let mut reader = client(other.db.addr()).await;
    let written = writer
        .set(v1::SetRequest {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
        })
        .await
        .expect("set")
        .into_inner();
    let got = reader
        .get(v1::GetRequest {
            key: b"k".to_vec(),
            read_preference: v1::ReadPreference::Leader as i32,
        })
        .await
        .expect("get")
        .into_inner()
        .entry
        .expect("entry");
    assert_eq!((got.value, got.revision), (b"v".to_vec(), written.revision));
    let cas = writer
        .compare_and_set(v1::CompareAndSetRequest {
            key: b"k".to_vec(),
            expected: Some(v1::compare_and_set_request::Expected::ExpectedRevision(
                written.revision,
            )),
            new: Some(v1::compare_and_set_request::New::Delete(v1::Absent {})),
        })
        .await
        .expect("cas")
        .into_inner();
    assert!(cas.succeeded && cas.current.is_none());
    let missing = reader
        .get(v1::GetRequest {
            key: b"k".to_vec(),
            read_preference: v1::ReadPreference::Leader as i32,
        })
        .await
        .expect_err("deleted");
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(detail(&missing), ErrorCode::KeyNotFound);
    let range = reader
        .get_range(v1::GetRangeRequest {
            min: None,
            max: None,
            count: 0,
            read_preference: v1::ReadPreference::Local as i32,
        })
        .await
        .expect("range")
        .into_inner();
    assert!(range.entries.is_empty() && !range.more);
    for node in &nodes {
        node.db.close().await;
    }
}

/// Bad requests get INVALID_ARGUMENT or RESOURCE_EXHAUSTED with the right detail, and the node
/// keeps serving afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversize_requests_are_refused() {
    let nodes = start_cluster(1).await;
    let mut kv = client(nodes[0].db.addr()).await;

    let empty = kv
        .set(v1::SetRequest {
            key: vec![],
            value: b"v".to_vec(),
        })
        .await
        .expect_err("empty key");
    assert_eq!(
        (empty.code(), detail(&empty)),
        (Code::InvalidArgument, ErrorCode::EmptyKey)
    );

    let long = kv
        .set(v1::SetRequest {
            key: vec![b'k'; 512],
            value: vec![],
        })
        .await
        .expect_err("long key");
    assert_eq!(
        (long.code(), detail(&long)),
        (Code::InvalidArgument, ErrorCode::KeyTooLong)
    );

    let big_value = kv
        .set(v1::SetRequest {
            key: b"k".to_vec(),
            value: vec![0; (1 << 20) + 1],
        })
        .await
        .expect_err("oversize value");
    assert_eq!(
        (big_value.code(), detail(&big_value)),
        (Code::InvalidArgument, ErrorCode::ValueTooLarge)
    );

    let too_large = kv
        .set_many(v1::SetManyRequest {
            keys: (0..4u8).map(|i| vec![i + 1]).collect(),
            values: (0..4).map(|_| vec![0; 1 << 20]).collect(),
        })
        .await
        .expect_err("request too large");
    assert_eq!(
        (too_large.code(), detail(&too_large)),
        (Code::ResourceExhausted, ErrorCode::RequestTooLarge)
    );

    let mismatch = kv
        .set_many(v1::SetManyRequest {
            keys: vec![b"a".to_vec()],
            values: vec![],
        })
        .await
        .expect_err("mismatch");
    assert_eq!(
        (mismatch.code(), detail(&mismatch)),
        (Code::InvalidArgument, ErrorCode::LengthMismatch)
    );

    // Malformed requests (no CAS condition, an unknown read preference, bytes that are not
    // protobuf) are covered with their typed detail in honest_answers.rs.

    let ok = kv
        .set(v1::SetRequest {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
        })
        .await;
    assert!(ok.is_ok(), "the node still serves: {ok:?}");
    nodes[0].db.close().await;
}

/// The Cluster service reports status from any node, adds a fresh node and removes one,
/// forwarding to the leader as needed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_service_manages_membership() {
    use dbadger_proto::v1::cluster_client::ClusterClient;
    let nodes = start_cluster(3).await;
    let follower = nodes
        .iter()
        .find(|n| !n.db.is_leader())
        .expect("a follower");
    let mut cluster = ClusterClient::connect(format!("http://{}", follower.db.addr()))
        .await
        .expect("connect");
    // A node becomes ready once it has applied everything it knows committed: let the
    // follower finish applying what the leader has committed so far (nothing is written
    // meanwhile).
    let leader_committed = nodes
        .iter()
        .find(|n| n.db.is_leader())
        .expect("leader")
        .db
        .stats()
        .committed_index;
    follower
        .db
        .wait_applied(leader_committed)
        .await
        .expect("the follower applies the committed log");
    let status = cluster
        .status(v1::StatusRequest {})
        .await
        .expect("status")
        .into_inner();
    let leader = nodes.iter().find(|n| n.db.is_leader()).expect("leader");
    assert_eq!(status.leader_id, leader.db.id());
    assert_eq!(status.members.iter().filter(|m| m.voter).count(), 3);
    assert!(status.ready && !status.is_leader);
    assert!(status.stats.expect("stats").applied_index >= 1);

    let fresh = dbadger_tests::start_node(dbadger::StartMode::Resume).await;
    cluster
        .add_peer(v1::AddPeerRequest {
            id: fresh.db.id(),
            addr: fresh.db.addr().to_owned(),
            learner_only: false,
        })
        .await
        .expect("add peer through a follower");
    let revision = leader.db.set(b"after-add", b"1").await.expect("write");
    fresh
        .db
        .wait_applied(revision)
        .await
        .expect("the new node replicates");
    let voters = |status: &v1::StatusResponse| status.members.iter().filter(|m| m.voter).count();
    let status = cluster
        .status(v1::StatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert_eq!(
        voters(&status),
        4,
        "the follower applied the membership before the write"
    );

    cluster
        .remove_peer(v1::RemovePeerRequest { id: fresh.db.id() })
        .await
        .expect("remove peer");
    // The leader committed the change before answering, so its view is current.
    let mut at_leader = ClusterClient::connect(format!("http://{}", leader.db.addr()))
        .await
        .expect("connect");
    let status = at_leader
        .status(v1::StatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert_eq!(voters(&status), 3);
    assert!(status.members.iter().all(|m| m.id != fresh.db.id()));
    let refused = cluster
        .add_peer(v1::AddPeerRequest {
            id: 0,
            addr: String::new(),
            learner_only: false,
        })
        .await;
    assert_eq!(
        refused.expect_err("empty add_peer").code(),
        Code::InvalidArgument
    );
    fresh.db.close().await;
    for node in &nodes {
        node.db.close().await;
    }
}
