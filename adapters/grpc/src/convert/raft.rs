//! Raft messages: log ids, votes, append-entries, votes, snapshot headers, leadership transfer.

use dbadger_core::codec::{decode_entry, decode_snapshot_meta, encode_entry, encode_snapshot_meta};
use dbadger_core::raft_types::{LeaderId, LogId, RaftTypes, SnapshotMeta, Vote};
use dbadger_proto::v1;
use openraft::AsyncRuntime;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, StreamAppendError, StreamAppendResult,
    TransferLeaderError, TransferLeaderRequest, TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::vote::RaftLeaderId;

use crate::WireError;

/// A log id on the wire.
pub fn log_id_to_wire(id: &LogId) -> v1::LogId {
    v1::LogId {
        term: id.leader_id.term,
        leader_id: id.leader_id.node_id,
        index: id.index,
    }
}

/// A log id from the wire.
pub fn log_id_from_wire(id: v1::LogId) -> LogId {
    LogId::new(LeaderId::new(id.term, id.leader_id), id.index)
}

/// A vote on the wire.
pub fn vote_to_wire(vote: &Vote) -> v1::Vote {
    v1::Vote {
        term: vote.leader_id.term,
        node_id: vote.leader_id.node_id,
        committed: vote.committed,
    }
}

/// A vote from the wire; `field` names it in the error when absent.
pub fn vote_from_wire(vote: Option<v1::Vote>, field: &'static str) -> Result<Vote, WireError> {
    let vote = vote.ok_or(WireError::MissingField(field))?;
    Ok(if vote.committed {
        Vote::new_committed(vote.term, vote.node_id)
    } else {
        Vote::new(vote.term, vote.node_id)
    })
}

/// An append-entries request on the wire; entries travel in the core's log encoding.
pub fn append_request_to_wire<RT: AsyncRuntime>(
    request: &AppendEntriesRequest<RaftTypes<RT>>,
) -> v1::AppendEntriesRequest {
    v1::AppendEntriesRequest {
        vote: Some(vote_to_wire(&request.vote)),
        prev_log_id: request.prev_log_id.as_ref().map(log_id_to_wire),
        entries: request.entries.iter().map(encode_entry).collect(),
        leader_commit: request.leader_commit.as_ref().map(log_id_to_wire),
    }
}

/// An append-entries request from the wire.
pub fn append_request_from_wire<RT: AsyncRuntime>(
    request: v1::AppendEntriesRequest,
) -> Result<AppendEntriesRequest<RaftTypes<RT>>, WireError> {
    let entries = request
        .entries
        .iter()
        .map(|bytes| {
            decode_entry(bytes).map_err(|source| WireError::Decode {
                what: "log entry",
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(AppendEntriesRequest {
        vote: vote_from_wire(request.vote, "vote")?,
        prev_log_id: request.prev_log_id.map(log_id_from_wire),
        entries,
        leader_commit: request.leader_commit.map(log_id_from_wire),
    })
}

/// An append-entries response on the wire.
pub fn append_response_to_wire<RT: AsyncRuntime>(
    response: &AppendEntriesResponse<RaftTypes<RT>>,
) -> v1::AppendEntriesResponse {
    use v1::append_entries_response::Result as Wire;
    let result = match response {
        AppendEntriesResponse::Success => Wire::Success(v1::Empty {}),
        AppendEntriesResponse::PartialSuccess(matching) => {
            Wire::PartialSuccess(v1::PartialSuccess {
                matching: matching.as_ref().map(log_id_to_wire),
            })
        }
        AppendEntriesResponse::Conflict => Wire::Conflict(v1::Empty {}),
        AppendEntriesResponse::HigherVote(vote) => Wire::HigherVote(vote_to_wire(vote)),
    };
    v1::AppendEntriesResponse {
        result: Some(result),
    }
}

/// An append-entries response from the wire.
pub fn append_response_from_wire<RT: AsyncRuntime>(
    response: v1::AppendEntriesResponse,
) -> Result<AppendEntriesResponse<RaftTypes<RT>>, WireError> {
    use v1::append_entries_response::Result as Wire;
    Ok(
        match response.result.ok_or(WireError::MissingField("result"))? {
            Wire::Success(_) => AppendEntriesResponse::Success,
            Wire::PartialSuccess(partial) => {
                AppendEntriesResponse::PartialSuccess(partial.matching.map(log_id_from_wire))
            }
            Wire::Conflict(_) => AppendEntriesResponse::Conflict,
            Wire::HigherVote(vote) => {
                AppendEntriesResponse::HigherVote(vote_from_wire(Some(vote), "higher_vote")?)
            }
        },
    )
}

/// One answer on an append stream, on the wire.
pub fn stream_append_result_to_wire<RT: AsyncRuntime>(
    result: &StreamAppendResult<RaftTypes<RT>>,
) -> v1::StreamAppendResponse {
    use v1::stream_append_response::Result as Wire;
    let result = match result {
        Ok(matched) => Wire::Matched(v1::Matched {
            log_id: matched.as_ref().map(log_id_to_wire),
        }),
        Err(StreamAppendError::Conflict(prev)) => Wire::Conflict(log_id_to_wire(prev)),
        Err(StreamAppendError::HigherVote(vote)) => Wire::HigherVote(vote_to_wire(vote)),
    };
    v1::StreamAppendResponse {
        result: Some(result),
    }
}

/// One answer on an append stream, from the wire.
pub fn stream_append_result_from_wire<RT: AsyncRuntime>(
    response: v1::StreamAppendResponse,
) -> Result<StreamAppendResult<RaftTypes<RT>>, WireError> {
    use v1::stream_append_response::Result as Wire;
    Ok(
        match response.result.ok_or(WireError::MissingField("result"))? {
            Wire::Matched(matched) => Ok(matched.log_id.map(log_id_from_wire)),
            Wire::Conflict(prev) => Err(StreamAppendError::Conflict(log_id_from_wire(prev))),
            Wire::HigherVote(vote) => Err(StreamAppendError::HigherVote(vote_from_wire(
                Some(vote),
                "higher_vote",
            )?)),
        },
    )
}

/// A vote request on the wire.
pub fn vote_request_to_wire<RT: AsyncRuntime>(
    request: &VoteRequest<RaftTypes<RT>>,
) -> v1::VoteRequest {
    v1::VoteRequest {
        vote: Some(vote_to_wire(&request.vote)),
        last_log_id: request.last_log_id.as_ref().map(log_id_to_wire),
    }
}

/// A vote request from the wire.
pub fn vote_request_from_wire<RT: AsyncRuntime>(
    request: v1::VoteRequest,
) -> Result<VoteRequest<RaftTypes<RT>>, WireError> {
    Ok(VoteRequest::new(
        vote_from_wire(request.vote, "vote")?,
        request.last_log_id.map(log_id_from_wire),
    ))
}

/// A vote response on the wire.
pub fn vote_response_to_wire<RT: AsyncRuntime>(
    response: &VoteResponse<RaftTypes<RT>>,
) -> v1::VoteResponse {
    v1::VoteResponse {
        vote: Some(vote_to_wire(&response.vote)),
        vote_granted: response.vote_granted,
        last_log_id: response.last_log_id.as_ref().map(log_id_to_wire),
    }
}

/// A vote response from the wire.
pub fn vote_response_from_wire<RT: AsyncRuntime>(
    response: v1::VoteResponse,
) -> Result<VoteResponse<RaftTypes<RT>>, WireError> {
    Ok(VoteResponse::new(
        vote_from_wire(response.vote, "vote")?,
        response.last_log_id.map(log_id_from_wire),
        response.vote_granted,
    ))
}

/// The header that opens a snapshot stream.
pub fn snapshot_header_to_wire(vote: &Vote, meta: &SnapshotMeta, size: u64) -> v1::SnapshotHeader {
    v1::SnapshotHeader {
        vote: Some(vote_to_wire(vote)),
        meta: encode_snapshot_meta(meta),
        size,
    }
}

/// The vote and snapshot metadata of a stream's header.
pub fn snapshot_header_from_wire(
    header: v1::SnapshotHeader,
) -> Result<(Vote, SnapshotMeta), WireError> {
    let vote = vote_from_wire(header.vote, "vote")?;
    let meta = decode_snapshot_meta(&header.meta).map_err(|source| WireError::Decode {
        what: "snapshot meta",
        source,
    })?;
    Ok((vote, meta))
}

/// A leadership-transfer request on the wire.
pub fn transfer_request_to_wire<RT: AsyncRuntime>(
    request: &TransferLeaderRequest<RaftTypes<RT>>,
) -> v1::TransferLeaderRequest {
    v1::TransferLeaderRequest {
        from_leader: Some(vote_to_wire(request.from_leader())),
        to_node_id: *request.to_node_id(),
        last_log_id: request.last_log_id().map(log_id_to_wire),
    }
}

/// A leadership-transfer request from the wire.
pub fn transfer_request_from_wire<RT: AsyncRuntime>(
    request: v1::TransferLeaderRequest,
) -> Result<TransferLeaderRequest<RaftTypes<RT>>, WireError> {
    Ok(TransferLeaderRequest::new(
        vote_from_wire(request.from_leader, "from_leader")?,
        request.to_node_id,
        request.last_log_id.map(log_id_from_wire),
    ))
}

/// A leadership-transfer outcome on the wire.
pub fn transfer_response_to_wire<RT: AsyncRuntime>(
    response: &TransferLeaderResponse<RaftTypes<RT>>,
) -> v1::TransferLeaderResponse {
    use v1::transfer_leader_response::Result as Wire;
    let result = match response {
        Ok(()) => Wire::Accepted(v1::Empty {}),
        Err(TransferLeaderError::VoteChanged { expected, actual }) => {
            Wire::VoteChanged(v1::VoteChanged {
                expected: Some(vote_to_wire(expected)),
                actual: Some(vote_to_wire(actual)),
            })
        }
        Err(TransferLeaderError::LogNotFlushed { expected, actual }) => {
            Wire::LogNotFlushed(v1::LogNotFlushed {
                expected: expected.as_ref().map(log_id_to_wire),
                actual: actual.as_ref().map(log_id_to_wire),
            })
        }
    };
    v1::TransferLeaderResponse {
        result: Some(result),
    }
}

/// A leadership-transfer outcome from the wire.
pub fn transfer_response_from_wire<RT: AsyncRuntime>(
    response: v1::TransferLeaderResponse,
) -> Result<TransferLeaderResponse<RaftTypes<RT>>, WireError> {
    use v1::transfer_leader_response::Result as Wire;
    Ok(
        match response.result.ok_or(WireError::MissingField("result"))? {
            Wire::Accepted(_) => Ok(()),
            Wire::VoteChanged(changed) => Err(TransferLeaderError::VoteChanged {
                expected: vote_from_wire(changed.expected, "expected")?,
                actual: vote_from_wire(changed.actual, "actual")?,
            }),
            Wire::LogNotFlushed(not_flushed) => Err(TransferLeaderError::LogNotFlushed {
                expected: not_flushed.expected.map(log_id_from_wire),
                actual: not_flushed.actual.map(log_id_from_wire),
            }),
        },
    )
}
