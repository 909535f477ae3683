//! A peer that breaks the protocol cannot crash or wedge a node: append-entries whose entries
//! do not follow `prev_log_id` or carry a term beyond the sender's vote, snapshot headers that
//! claim log ids beyond their vote or more bytes than the limit, and snapshot streams from a
//! stale leader are refused at the gRPC boundary (INVALID_ARGUMENT) or answered at once with
//! the node's vote, before anything reaches the store; the node keeps running throughout.

use std::time::Duration;

use dbadger_core::codec::{encode_entry, encode_snapshot_meta};
use dbadger_core::raft_types::{
    EntryPayload, LeaderId, LogEntry, LogId, SnapshotMeta, StoredMembership,
};
use dbadger_proto::v1;
use dbadger_proto::v1::raft_client::RaftClient;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::vote::RaftLeaderId;
use tonic::Code;
use tonic::transport::Channel;

mod common;

use common::{TestNode, start_node};

const STEP: Duration = Duration::from_secs(20);

fn entry(term: u64, index: u64) -> Vec<u8> {
    encode_entry(&LogEntry {
        log_id: LogId::new(LeaderId::new(term, 2), index),
        payload: EntryPayload::Blank,
    })
}

fn vote(term: u64) -> Option<v1::Vote> {
    Some(v1::Vote {
        term,
        node_id: 2,
        committed: true,
    })
}

fn log_id(term: u64, index: u64) -> Option<v1::LogId> {
    Some(v1::LogId {
        term,
        leader_id: 2,
        index,
    })
}

/// A one-node cluster (node 1) and a client standing in for a hostile node 2.
async fn target() -> (TestNode, RaftClient<Channel>) {
    let node = start_node(1).await;
    node.raft
        .initialize(std::collections::BTreeMap::from([(
            1,
            dbadger_core::raft_types::Node {
                addr: node.addr.clone(),
            },
        )]))
        .await
        .expect("initialize");
    node.raft
        .wait(Some(STEP))
        .state(openraft::ServerState::Leader, "leads")
        .await
        .expect("leader");
    let client = RaftClient::connect(format!("http://{}", node.addr))
        .await
        .expect("connect");
    (node, client)
}

fn still_running(node: &TestNode) {
    let metrics = node.raft.metrics().borrow_watched().clone();
    assert!(
        metrics.running_state.is_ok(),
        "the node stopped: {:?}",
        metrics.running_state
    );
}

fn invalid(result: Result<impl std::fmt::Debug, tonic::Status>, what: &str) {
    let status = result.expect_err(what);
    assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_entries_that_break_the_protocol_are_refused() {
    let (node, mut client) = target().await;
    // Entries that do not follow prev_log_id (a hole after index 0).
    let hole = v1::AppendEntriesRequest {
        vote: vote(9),
        prev_log_id: log_id(9, 0),
        entries: vec![entry(9, 5)],
        leader_commit: None,
    };
    invalid(client.append_entries(hole).await, "entries after a hole");
    still_running(&node);
    // Entries out of order.
    let unordered = v1::AppendEntriesRequest {
        vote: vote(9),
        prev_log_id: None,
        entries: vec![entry(9, 0), entry(9, 2), entry(9, 1)],
        leader_commit: None,
    };
    invalid(
        client.append_entries(unordered).await,
        "entries out of order",
    );
    // Entries whose term is beyond the sender's vote.
    let beyond = v1::AppendEntriesRequest {
        vote: vote(9),
        prev_log_id: None,
        entries: vec![entry(12, 0)],
        leader_commit: None,
    };
    invalid(
        client.append_entries(beyond).await,
        "entries beyond the vote",
    );
    still_running(&node);
    node.raft
        .wait(Some(STEP))
        .state(openraft::ServerState::Leader, "still leads")
        .await
        .expect("the node still leads");
}

fn snapshot_header(vote_term: u64, last: Option<v1::LogId>, size: u64) -> v1::SnapshotChunk {
    let meta = SnapshotMeta {
        last_log_id: last.map(|id| LogId::new(LeaderId::new(id.term, id.leader_id), id.index)),
        last_membership: StoredMembership::default(),
    };
    v1::SnapshotChunk {
        chunk: Some(v1::snapshot_chunk::Chunk::Header(v1::SnapshotHeader {
            vote: vote(vote_term),
            meta: encode_snapshot_meta(&meta),
            size,
        })),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_headers_that_break_the_protocol_are_refused() {
    let (node, mut client) = target().await;
    // A snapshot whose last log id is beyond its sender's vote (an openraft assertion).
    let beyond = futures_util::stream::iter([snapshot_header(9, log_id(12, 50), 0)]);
    invalid(
        client.install_snapshot(beyond).await,
        "snapshot beyond the vote",
    );
    still_running(&node);
    // More bytes than the node accepts.
    let huge = futures_util::stream::iter([snapshot_header(9, log_id(9, 50), u64::MAX)]);
    invalid(client.install_snapshot(huge).await, "an oversized snapshot");
    still_running(&node);
}

/// A stale leader's snapshot is answered with the node's vote as soon as its header arrives:
/// the node does not wait for (or store) the data. The stream is never finished here, so a
/// node that read on would not answer at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_leaders_snapshot_is_answered_before_its_data() {
    let (node, mut client) = target().await;
    let current = node.raft.metrics().borrow_watched().current_term;
    let (chunks, outgoing) = tokio::sync::mpsc::channel(4);
    chunks
        .send(snapshot_header(0, log_id(0, 50), 1 << 30))
        .await
        .expect("header queued");
    let stream = futures_util::stream::unfold(outgoing, |mut outgoing| async move {
        let chunk = outgoing.recv().await?;
        Some((chunk, outgoing))
    });
    let answer = tokio::time::timeout(Duration::from_secs(5), client.install_snapshot(stream))
        .await
        .expect("the node answered before the data came")
        .expect("an answer with the node's vote");
    let answered = answer.into_inner().vote.expect("a vote");
    assert!(answered.term >= current, "{answered:?}");
    drop(chunks);
    still_running(&node);
}
