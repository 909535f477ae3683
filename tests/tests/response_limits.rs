//! The response limit holds end to end over real gRPC: every answer is bounded by its encoded
//! size, an answer that cannot be cut short is refused (RESOURCE_EXHAUSTED, RESPONSE_TOO_LARGE)
//! before anything is proposed, a write's answer never exceeds what the forwarding path can
//! carry, and each bound is tested on both sides.

use std::time::Duration;

use dbadger_proto::v1::kv_client::KvClient;
use dbadger_proto::v1::{self, ErrorCode, Outcome};
use dbadger_tests::{TestNode, error_detail, follower, guarded, start_cluster, start_cluster_with};
use prost::Message;
use tonic::Code;
use tonic::transport::Channel;

const GUARD: Duration = Duration::from_secs(120);

/// The response limit of the small-limit tests.
const LIMIT_BYTES: usize = 64 << 10;

async fn client(node: &TestNode) -> KvClient<Channel> {
    KvClient::connect(format!("http://{}", node.db.addr()))
        .await
        .expect("connect")
        // Larger than any answer the node may send, so only the node's limit is tested.
        .max_decoding_message_size(64 << 20)
}

async fn small_limit_node() -> Vec<TestNode> {
    start_cluster_with(1, &|config| {
        config.limits.max_response_bytes = LIMIT_BYTES;
        config.limits.max_value_bytes = 16 << 10;
    })
    .await
}

/// Writes `count` keys `t00000000..` with `value_bytes`-byte values, in batches.
async fn fill(kv: &mut KvClient<Channel>, count: usize, value_bytes: usize) {
    let keys: Vec<Vec<u8>> = (0..count)
        .map(|i| format!("t{i:08}").into_bytes())
        .collect();
    for batch in keys.chunks(5_000) {
        kv.set_many(v1::SetManyRequest {
            keys: batch.to_vec(),
            values: vec![vec![7; value_bytes]; batch.len()],
        })
        .await
        .expect("fill");
    }
}

fn too_large(status: &tonic::Status) -> bool {
    let detail = error_detail(status).expect("typed detail");
    status.code() == Code::ResourceExhausted
        && detail.code == ErrorCode::ResponseTooLarge as i32
        && detail.outcome == Outcome::NotApplied as i32
}

/// GetMany has no `more`: an answer under the limit is served, one over it is refused with
/// RESOURCE_EXHAUSTED / RESPONSE_TOO_LARGE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_many_answers_are_bounded() {
    guarded(GUARD, async {
        let nodes = small_limit_node().await;
        let mut kv = client(&nodes[0]).await;
        fill(&mut kv, 10, 8 << 10).await;
        let keys = |n: usize| (0..n).map(|i| format!("t{i:08}").into_bytes()).collect();
        let under = kv
            .get_many(v1::GetManyRequest {
                keys: keys(7),
                read_preference: 0,
            })
            .await
            .expect("7 x 8 KiB fits in 64 KiB")
            .into_inner();
        assert!(under.encoded_len() <= LIMIT_BYTES);
        assert_eq!(under.entries.len(), 7);
        for preference in [0, 1] {
            let over = kv
                .get_many(v1::GetManyRequest {
                    keys: keys(10),
                    read_preference: preference,
                })
                .await
                .map(|answer| answer.into_inner().encoded_len())
                .expect_err("10 x 8 KiB exceeds 64 KiB");
            assert!(too_large(&over), "{over:?}");
        }
        nodes[0].db.close().await;
    })
    .await;
}

/// A range of many tiny entries is cut by its encoded size (framing included), not by its key
/// and value bytes alone; a range under the limit is served whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_answers_count_their_framing() {
    guarded(GUARD, async {
        let nodes = small_limit_node().await;
        let mut kv = client(&nodes[0]).await;
        fill(&mut kv, 20_000, 0).await;
        let range = |count| v1::GetRangeRequest {
            min: None,
            max: None,
            count,
            read_preference: 0,
        };
        let cut = kv.get_range(range(0)).await.expect("range").into_inner();
        assert!(cut.more, "20,000 entries do not fit in 64 KiB");
        assert!(
            cut.encoded_len() <= LIMIT_BYTES,
            "{} entries encode to {} bytes, over the {LIMIT_BYTES}-byte limit",
            cut.entries.len(),
            cut.encoded_len()
        );
        let whole = kv
            .get_range(range(1_000))
            .await
            .expect("range")
            .into_inner();
        assert_eq!(whole.entries.len(), 1_000);
        let prefix = kv
            .get_prefix(v1::GetPrefixRequest {
                prefix: b"t".to_vec(),
                read_preference: 1,
            })
            .await
            .expect("prefix")
            .into_inner();
        assert!(prefix.more && prefix.encoded_len() <= LIMIT_BYTES);
        nodes[0].db.close().await;
    })
    .await;
}

/// DeleteRange removes every key in range, and its answer lists the removed keys only up to
/// the response limit (with `more` and the full count).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_range_answers_are_bounded() {
    guarded(GUARD, async {
        let nodes = small_limit_node().await;
        let mut kv = client(&nodes[0]).await;
        fill(&mut kv, 20_000, 0).await;
        let deleted = kv
            .delete_range(v1::DeleteRangeRequest {
                min: None,
                max: None,
            })
            .await
            .expect("delete range")
            .into_inner();
        assert!(
            deleted.encoded_len() <= LIMIT_BYTES,
            "{}",
            deleted.encoded_len()
        );
        assert!(deleted.more);
        assert_eq!(deleted.deleted, 20_000);
        let left = kv
            .get_range(v1::GetRangeRequest {
                min: None,
                max: None,
                count: 0,
                read_preference: 0,
            })
            .await
            .expect("range")
            .into_inner();
        assert!(left.entries.is_empty(), "every key in range was removed");
        nodes[0].db.close().await;
    })
    .await;
}

/// With the default limits, a DeleteRange through a follower whose full list of keys would be
/// larger than a gRPC message (4 MiB) succeeds, and its answer fits: the forwarding path never
/// turns an applied write into an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_write_answer_always_fits() {
    guarded(GUARD, async {
        let nodes = start_cluster(3).await;
        let follower = follower(&nodes);
        let mut kv = client(follower).await;
        // 300,000 keys of 40 bytes: 12 MB of keys, three times a gRPC message.
        let keys: Vec<Vec<u8>> = (0..300_000)
            .map(|i| format!("forwarded-delete-range-key-{i:013}").into_bytes())
            .collect();
        for batch in keys.chunks(10_000) {
            kv.set_many(v1::SetManyRequest {
                keys: batch.to_vec(),
                values: vec![Vec::new(); batch.len()],
            })
            .await
            .expect("fill");
        }
        let deleted = kv
            .delete_range(v1::DeleteRangeRequest {
                min: None,
                max: None,
            })
            .await
            .expect("the forwarded delete succeeds")
            .into_inner();
        assert_eq!(deleted.deleted, 300_000);
        assert!(deleted.more && deleted.encoded_len() <= 4 << 20);
        for node in &nodes {
            node.db.close().await;
        }
    })
    .await;
}
