//! What a client is told is the truth: a follower acknowledges a write only once it has applied
//! it; lost quorum is a prompt, short UNAVAILABLE; the node's typed DEADLINE_EXCEEDED arrives
//! before the client's own timer; bad bytes are the client's INVALID_ARGUMENT; every error
//! carries its typed detail the standard way (a `google.rpc.Status` holding the detail in an
//! `Any`), with the outcome of the request.

use std::time::{Duration, Instant};

use bytes::{Buf, BufMut};
use dbadger::ReadPreference;
use dbadger_proto::v1::cluster_client::ClusterClient;
use dbadger_proto::v1::kv_client::KvClient;
use dbadger_proto::v1::{self, ErrorCode, Outcome};
use dbadger_tests::{TestNode, error_detail, follower, guarded, start_cluster};
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

/// Every test here ends within this, so a hang fails instead of stalling CI.
const GUARD: Duration = Duration::from_secs(60);

async fn channel(addr: &str) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("address")
        .connect()
        .await
        .expect("connect")
}

fn with_timeout<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    request
}

/// The code, detail code and outcome of an error status; panics when the detail is missing.
fn classify(status: &tonic::Status) -> (Code, ErrorCode, Outcome) {
    let detail =
        error_detail(status).unwrap_or_else(|| panic!("status without a typed detail: {status:?}"));
    (
        status.code(),
        ErrorCode::try_from(detail.code).expect("known code"),
        Outcome::try_from(detail.outcome).expect("known outcome"),
    )
}

/// A message a person can read: short, said once, no Rust debug output.
fn assert_human(message: &str) {
    assert!(
        !message.contains('{') && !message.contains("Some(") && message.len() < 200,
        "not a short human message: {message:?}"
    );
    let words: Vec<&str> = message.split(": ").collect();
    assert!(
        words.windows(2).all(|pair| pair[0] != pair[1]),
        "repeated prefix in {message:?}"
    );
}

/// Set through a follower, then a Local read on that same follower sees the write, and the
/// follower's applied index has reached the write's revision: a follower acknowledges a
/// forwarded write only after applying it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_acknowledges_a_forwarded_write_only_after_applying_it() {
    guarded(GUARD, async {
        let nodes = start_cluster(3).await;
        let follower = follower(&nodes);
        let mut stale_reads = 0;
        let mut behind = 0;
        for i in 0..60u32 {
            let value = i.to_be_bytes();
            let revision = follower.db.set(b"ryw", value).await.expect("write");
            if follower.db.stats().applied_index < revision {
                behind += 1;
            }
            let seen = follower
                .db
                .get(b"ryw", ReadPreference::Local)
                .await
                .expect("local read");
            if seen.value != value || seen.revision != revision {
                stale_reads += 1;
            }
        }
        assert_eq!(
            (stale_reads, behind),
            (0, 0),
            "of 60 writes through a follower: stale Local reads, applied index behind"
        );
        close_all(&nodes).await;
    })
    .await;
}

async fn close_all(nodes: &[TestNode]) {
    for node in nodes {
        node.db.close().await;
    }
}

/// Stops every node except `keep` (an index into `nodes`) and returns the survivor.
async fn lose_quorum(mut nodes: Vec<TestNode>, keep: usize) -> TestNode {
    let survivor = nodes.remove(keep);
    close_all(&nodes).await;
    survivor
}

/// A write and a Leader read on a survivor without quorum answer UNAVAILABLE promptly (well
/// before the client's 20 s deadline), with a typed detail, a short message and the outcome: a
/// read changes nothing; a write refused before it was proposed is not applied, one proposed and
/// stranded is unknown. Checked both with the survivor leading and following.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_loss_is_a_prompt_short_unavailable() {
    guarded(GUARD, async {
        for survivor_leads in [true, false] {
            let nodes = start_cluster(3).await;
            let keep = nodes
                .iter()
                .position(|node| node.db.is_leader() == survivor_leads)
                .expect("a node in the wanted role");
            let survivor = lose_quorum(nodes, keep).await;
            let mut kv = KvClient::new(channel(survivor.db.addr()).await);
            for attempt in 0..2 {
                let started = Instant::now();
                let write = kv
                    .set(with_timeout(
                        v1::SetRequest {
                            key: b"k".to_vec(),
                            value: b"lost".to_vec(),
                        },
                        Duration::from_secs(20),
                    ))
                    .await
                    .expect_err("no quorum");
                let took = started.elapsed();
                let (code, detail, _) = classify(&write);
                assert_eq!(
                    (code, detail),
                    (Code::Unavailable, ErrorCode::NoLeader),
                    "{write:?}"
                );
                assert!(
                    took < Duration::from_secs(3),
                    "write {attempt} (survivor leads: {survivor_leads}) took {took:?}"
                );
                assert_human(write.message());

                let started = Instant::now();
                let read = kv
                    .get(with_timeout(
                        v1::GetRequest {
                            key: b"k".to_vec(),
                            read_preference: v1::ReadPreference::Leader as i32,
                        },
                        Duration::from_secs(20),
                    ))
                    .await
                    .expect_err("no quorum");
                let took = started.elapsed();
                assert_eq!(
                    classify(&read),
                    (Code::Unavailable, ErrorCode::NoLeader, Outcome::NotApplied),
                    "{read:?}"
                );
                assert!(took < Duration::from_secs(3), "read took {took:?}");
                assert_human(read.message());
                assert!(
                    !read.message().contains("write"),
                    "a read is told about writes: {:?}",
                    read.message()
                );
            }
            survivor.db.close().await;
        }
    })
    .await;
}

/// A client deadline shorter than the time the node takes to give up (150 and 300 ms, against
/// a leader that abandons a write after its 600 ms patience) ends in the node's own,
/// typed DEADLINE_EXCEEDED (detail TIMEOUT, the outcome of the write unknown), which arrives
/// before tonic's client-side timer could end the call without a detail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nodes_typed_deadline_wins_over_the_clients_timer() {
    guarded(GUARD, async {
        let nodes = start_cluster(3).await;
        let keep = nodes
            .iter()
            .position(|node| node.db.is_leader())
            .expect("a leader");
        let survivor = lose_quorum(nodes, keep).await;
        let mut kv = KvClient::new(channel(survivor.db.addr()).await);
        for timeout_ms in [150, 300] {
            let write = kv
                .set(with_timeout(
                    v1::SetRequest {
                        key: b"k".to_vec(),
                        value: b"v".to_vec(),
                    },
                    Duration::from_millis(timeout_ms),
                ))
                .await
                .expect_err("no quorum");
            let (code, detail, _) = classify(&write);
            assert_eq!((code, detail), (Code::DeadlineExceeded, ErrorCode::Timeout));
            assert_human(write.message());
        }
        survivor.db.close().await;
    })
    .await;
}

/// Sends bytes as they are: a client whose encoder is broken.
#[derive(Clone, Copy, Default)]
struct RawBytes;

struct RawEncoder;
struct RawDecoder;

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let mut bytes = vec![0; src.remaining()];
        src.copy_to_slice(&mut bytes);
        Ok(Some(bytes))
    }
}

impl Codec for RawBytes {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

async fn send_raw(addr: &str, method: &'static str, body: Vec<u8>) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(channel(addr).await);
    grpc.ready().await.expect("ready");
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(method);
    grpc.unary(tonic::Request::new(body), path, RawBytes)
        .await
        .expect_err("malformed bytes are refused")
}

/// Bytes that are not a valid protobuf message, an unknown read preference and a
/// compare-and-set without its oneofs are the client's mistake: INVALID_ARGUMENT with the
/// MALFORMED_REQUEST detail, not applied. Removing a member that does not exist is NOT_FOUND.
/// The node keeps serving afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bytes_get_invalid_argument_with_a_typed_detail() {
    guarded(GUARD, async {
        let nodes = start_cluster(1).await;
        let addr = nodes[0].db.addr().to_owned();
        let malformed = (
            Code::InvalidArgument,
            ErrorCode::MalformedRequest,
            Outcome::NotApplied,
        );
        // Field 1 (bytes) claims 100 bytes and carries 2.
        let truncated = vec![0x0a, 100, b'k', b'v'];
        for method in ["/dbadger.v1.Kv/Set", "/dbadger.v1.Kv/Get"] {
            let status = send_raw(&addr, method, truncated.clone()).await;
            assert_eq!(classify(&status), malformed, "{method}: {status:?}");
            assert_human(status.message());
        }

        let mut kv = KvClient::new(channel(&addr).await);
        let bad_preference = kv
            .get(v1::GetRequest {
                key: b"k".to_vec(),
                read_preference: 7,
            })
            .await
            .expect_err("unknown read preference");
        assert_eq!(classify(&bad_preference), malformed);
        let no_condition = kv
            .compare_and_set(v1::CompareAndSetRequest {
                key: b"k".to_vec(),
                expected: None,
                new: None,
            })
            .await
            .expect_err("cas without its oneofs");
        assert_eq!(classify(&no_condition), malformed);

        let missing_key = kv
            .get(v1::GetRequest {
                key: b"nothing".to_vec(),
                read_preference: 0,
            })
            .await
            .expect_err("missing key");
        assert_eq!(
            classify(&missing_key),
            (Code::NotFound, ErrorCode::KeyNotFound, Outcome::NotApplied)
        );

        let mut cluster = ClusterClient::new(channel(&addr).await);
        let unknown = cluster
            .remove_peer(v1::RemovePeerRequest { id: 424_242 })
            .await
            .expect_err("no such member");
        assert_eq!(
            classify(&unknown),
            (
                Code::NotFound,
                ErrorCode::UnknownMember,
                Outcome::NotApplied
            )
        );
        let status = cluster
            .status(v1::StatusRequest {})
            .await
            .expect("status")
            .into_inner();
        assert_eq!(status.members.len(), 1, "the membership is unchanged");

        let ok = kv
            .set(v1::SetRequest {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
            })
            .await;
        assert!(ok.is_ok(), "the node still serves: {ok:?}");
        close_all(&nodes).await;
    })
    .await;
}
