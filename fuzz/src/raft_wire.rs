//! The fuzz target over the Raft service's wire messages: whatever bytes a peer sends, the
//! conversion layer and the protocol rules answer with a value or an error, never a panic,
//! and a request they accept survives the trip to the wire and back unchanged.

use dbadger_core::raft_types::{LeaderId, LogId};
use dbadger_grpc::convert::{raft as wire, raft_rules};
use dbadger_proto::v1;
use openraft::vote::RaftLeaderId;
use openraft_rt_tokio::TokioRuntime;
use prost::Message;

/// The committed log ids the rules are checked against: none, and one in the middle.
fn committed_cases() -> [Option<LogId>; 2] {
    [None, Some(LogId::new(LeaderId::new(3, 1), 40))]
}

/// The first byte picks the message (append-entries, snapshot header, vote, transfer); the
/// rest is its protobuf encoding.
pub fn raft_wire(data: &[u8]) {
    let Some((&kind, bytes)) = data.split_first() else {
        return;
    };
    match kind % 4 {
        0 => append_entries(bytes),
        1 => snapshot_header(bytes),
        2 => {
            if let Ok(request) = v1::VoteRequest::decode(bytes)
                && let Ok(vote) = wire::vote_request_from_wire::<TokioRuntime>(request)
            {
                let again = wire::vote_request_to_wire(&vote);
                let back = wire::vote_request_from_wire::<TokioRuntime>(again)
                    .expect("a vote request that converted converts again");
                assert_eq!(back, vote, "a vote request changed on the wire");
            }
        }
        _ => {
            if let Ok(request) = v1::TransferLeaderRequest::decode(bytes) {
                let _ = wire::transfer_request_from_wire::<TokioRuntime>(request);
            }
        }
    }
}

fn append_entries(bytes: &[u8]) {
    let Ok(request) = v1::AppendEntriesRequest::decode(bytes) else {
        return;
    };
    let Ok(append) = wire::append_request_from_wire::<TokioRuntime>(request) else {
        return;
    };
    for committed in committed_cases() {
        let _ = raft_rules::check_append(
            &append.vote,
            append.prev_log_id.as_ref(),
            &append.entries,
            append.leader_commit.as_ref(),
            committed.as_ref(),
        );
    }
    let back =
        wire::append_request_from_wire::<TokioRuntime>(wire::append_request_to_wire(&append))
            .expect("an append request that converted converts again");
    assert_eq!(back.vote, append.vote);
    assert_eq!(back.prev_log_id, append.prev_log_id);
    assert_eq!(back.entries, append.entries, "entries changed on the wire");
    assert_eq!(back.leader_commit, append.leader_commit);
}

fn snapshot_header(bytes: &[u8]) {
    let Ok(header) = v1::SnapshotHeader::decode(bytes) else {
        return;
    };
    let size = header.size;
    let Ok((vote, meta)) = wire::snapshot_header_from_wire(header) else {
        return;
    };
    for committed in committed_cases() {
        let _ = raft_rules::check_snapshot(&vote, &meta, size, 1 << 30, committed.as_ref());
    }
    let again = wire::snapshot_header_to_wire(&vote, &meta, size);
    let (vote_back, meta_back) =
        wire::snapshot_header_from_wire(again).expect("a header that converted converts again");
    assert_eq!(
        (vote_back, meta_back),
        (vote, meta),
        "a header changed on the wire"
    );
}
