//! A node whose disk budget runs out keeps serving: writes are refused before they are
//! proposed (RESOURCE_EXHAUSTED, STORAGE_FULL, not applied) while reads keep working, deletes
//! still free space, and writes are taken again once there is room. Real gRPC, real LMDB with
//! a small map.

use std::time::Duration;

use dbadger_proto::v1::kv_client::KvClient;
use dbadger_proto::v1::{self, ErrorCode, Outcome};
use dbadger_tests::{error_detail, guarded, start_cluster_with};
use tonic::Code;

const GUARD: Duration = Duration::from_secs(120);
const VALUE_BYTES: usize = 8 << 10;
const MAX_STORAGE_BYTES: u64 = 2 << 20;

fn key(i: usize) -> Vec<u8> {
    format!("full-{i:06}").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_store_refuses_writes_before_proposing_and_keeps_serving() {
    guarded(GUARD, async {
        let nodes = start_cluster_with(1, &|config| {
            config.max_storage_bytes = MAX_STORAGE_BYTES;
        })
        .await;
        let node = &nodes[0];
        let mut kv = KvClient::connect(format!("http://{}", node.db.addr()))
            .await
            .expect("connect");
        let mut stored = 0;
        let refusal = loop {
            let request = v1::SetRequest {
                key: key(stored),
                value: vec![7; VALUE_BYTES],
            };
            match kv.set(request).await {
                Ok(_) => stored += 1,
                Err(status) => break status,
            }
            assert!(stored < 10_000, "a 2 MiB store never filled");
        };
        let detail = error_detail(&refusal).expect("a typed detail");
        assert_eq!(
            (refusal.code(), detail.code, detail.outcome),
            (
                Code::ResourceExhausted,
                ErrorCode::StorageFull as i32,
                Outcome::NotApplied as i32
            ),
            "the write that did not fit: {refusal:?}"
        );
        assert!(stored > 20, "only {stored} values fit in 2 MiB");
        assert!(node.db.failure().is_none(), "the node went fatal");
        for i in [0, stored - 1] {
            let got = kv
                .get(v1::GetRequest {
                    key: key(i),
                    ..Default::default()
                })
                .await
                .expect("reads work while full");
            let entry = got.into_inner().entry.expect("an entry");
            assert_eq!(entry.value.len(), VALUE_BYTES);
        }
        let missing = kv
            .get(v1::GetRequest {
                key: key(stored),
                ..Default::default()
            })
            .await;
        assert_eq!(
            missing.expect_err("the refused write is absent").code(),
            Code::NotFound
        );
        for i in 0..stored / 2 {
            kv.delete(v1::DeleteRequest { key: key(i) })
                .await
                .expect("deletes are taken while full");
        }
        let mut accepted = false;
        for attempt in 0..50 {
            let request = v1::SetRequest {
                key: format!("after-{attempt}").into_bytes(),
                value: vec![1; VALUE_BYTES],
            };
            if kv.set(request).await.is_ok() {
                accepted = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(accepted, "no write was taken after deletes freed space");
        assert!(node.db.failure().is_none(), "the node went fatal");
    })
    .await;
}

/// A disk that fails under the leader stops its Raft core: requests then fail with the
/// distinct, non-retryable `Fatal` error (UNAVAILABLE, NODE_FAILED over gRPC), and the node
/// reports the failure (`Db::failure`, not ready) instead of claiming to be shutting down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_disk_is_reported_as_a_fatal_node_failure() {
    use dbadger::{Db, Error as RequestError, StartMode};
    use dbadger_lmdb::{FaultPoint, InjectedFault, LmdbFaults, LmdbOptions, LmdbStore};

    guarded(GUARD, async {
        let dir = tempfile::tempdir().expect("temporary directory");
        let config = dbadger_tests::test_config(&dir, StartMode::Bootstrap);
        let faults = LmdbFaults::new();
        let store = LmdbStore::open_with_faults(dir.path(), LmdbOptions::default(), faults.clone())
            .expect("open");
        let id = store.node_id(|| 7).expect("node id");
        let (log, machine) = store.into_parts();
        let db = Db::start_with_storage(config, id, log, machine)
            .await
            .expect("node starts");
        db.set(b"before", b"1")
            .await
            .expect("a write before the fault");
        faults.fail_at(FaultPoint::Sync, 0, InjectedFault::Io);
        let error = db
            .set(b"during", b"2")
            .await
            .expect_err("a write whose flush failed was acknowledged");
        let failed = async {
            loop {
                if db.failure().is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), failed)
            .await
            .expect("the node reports its failure");
        assert!(!db.is_ready(), "a failed node says it is ready");
        let after = db
            .set(b"after", b"3")
            .await
            .expect_err("a failed node took a write");
        for error in [&error, &after] {
            if let RequestError::Fatal { reason } = error {
                assert!(reason.contains("storage failed"), "{reason}");
                assert!(!reason.contains("LogId {"), "a debug dump: {reason}");
            }
        }
        assert!(
            matches!(after, RequestError::Fatal { .. }),
            "a write to a failed node: {after:?}"
        );
        assert!(!after.is_retryable());
        let mut kv =
            dbadger_proto::v1::kv_client::KvClient::connect(format!("http://{}", db.addr()))
                .await
                .expect("connect");
        let status = kv
            .set(v1::SetRequest {
                key: b"grpc".to_vec(),
                value: b"4".to_vec(),
            })
            .await
            .expect_err("a failed node took a write over gRPC");
        let detail = error_detail(&status).expect("a typed detail");
        assert_eq!(
            (status.code(), detail.code, detail.retryable),
            (Code::Unavailable, ErrorCode::NodeFailed as i32, false)
        );
        db.close().await;
    })
    .await;
}
