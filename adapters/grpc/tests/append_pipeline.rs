//! Pipelined replication over real gRPC on loopback: the leader's side sends append requests
//! without waiting for earlier answers, gives up on a follower that stops answering, and the
//! follower's side answers in order and reports a malformed request after the good ones.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dbadger_core::raft_types::{LeaderId, LogId, Node, Vote};
use dbadger_core::storage::memory::MemorySnapshot;
use dbadger_grpc::{GrpcNetwork, MAX_APPENDS_IN_FLIGHT, PeerOptions, PeerTransport, RaftService};
use dbadger_proto::v1;
use dbadger_proto::v1::raft_client::RaftClient;
use dbadger_proto::v1::raft_server::{Raft as RaftRpc, RaftServer};
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use openraft::Config;
use openraft::errors::RPCError;
use openraft::network::v2::RaftNetworkV2;
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::AppendEntriesRequest;
use openraft::vote::RaftLeaderId;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Status, Streaming};

mod common;

use common::{NotForwarding, Types, memory_raft};

/// Generous bound on any single step: a broken pipeline hangs, and this turns the hang into a
/// failure instead of a stuck test run.
const STEP: Duration = Duration::from_secs(20);

/// How a scripted follower answers an append stream.
#[derive(Clone, Copy)]
enum Script {
    /// Answers nothing until this many requests have arrived, then answers each, in order.
    HoldUntil(usize),
    /// Answers this many requests, then reads on but never answers again.
    GoSilentAfter(usize),
}

/// A follower that answers append streams by script: each request is answered as matched up to
/// its `prev_log_id`. Every other RPC is unimplemented.
struct ScriptedFollower {
    script: Script,
    received: Arc<AtomicUsize>,
}

type AnswerStream = Pin<Box<dyn Stream<Item = Result<v1::StreamAppendResponse, Status>> + Send>>;

fn matched(request: &v1::AppendEntriesRequest) -> Result<v1::StreamAppendResponse, Status> {
    Ok(v1::StreamAppendResponse {
        result: Some(v1::stream_append_response::Result::Matched(v1::Matched {
            log_id: request.prev_log_id,
        })),
    })
}

#[tonic::async_trait]
impl RaftRpc for ScriptedFollower {
    type StreamAppendStream = AnswerStream;

    async fn stream_append(
        &self,
        request: Request<Streaming<v1::AppendEntriesRequest>>,
    ) -> Result<tonic::Response<AnswerStream>, Status> {
        let mut incoming = request.into_inner();
        let (answers, receiver) = tokio::sync::mpsc::channel(64);
        let script = self.script;
        let received = Arc::clone(&self.received);
        tokio::spawn(async move {
            let mut held = Vec::new();
            let mut answered = 0;
            while let Ok(Some(request)) = incoming.message().await {
                received.fetch_add(1, Ordering::SeqCst);
                held.push(request);
                let release = match script {
                    Script::HoldUntil(count) => received.load(Ordering::SeqCst) >= count,
                    Script::GoSilentAfter(count) => answered < count,
                };
                if release {
                    for request in held.drain(..) {
                        answered += 1;
                        if answers.send(matched(&request)).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let answers = futures_util::stream::unfold(receiver, |mut receiver| async move {
            let answer = receiver.recv().await?;
            Some((answer, receiver))
        });
        Ok(tonic::Response::new(Box::pin(answers)))
    }

    async fn forward(
        &self,
        _: Request<v1::ForwardRequest>,
    ) -> Result<tonic::Response<v1::ForwardResponse>, Status> {
        Err(Status::unimplemented("scripted follower"))
    }

    async fn append_entries(
        &self,
        _: Request<v1::AppendEntriesRequest>,
    ) -> Result<tonic::Response<v1::AppendEntriesResponse>, Status> {
        Err(Status::unimplemented("scripted follower"))
    }

    async fn vote(
        &self,
        _: Request<v1::VoteRequest>,
    ) -> Result<tonic::Response<v1::VoteResponse>, Status> {
        Err(Status::unimplemented("scripted follower"))
    }

    async fn pre_vote(
        &self,
        _: Request<v1::VoteRequest>,
    ) -> Result<tonic::Response<v1::VoteResponse>, Status> {
        Err(Status::unimplemented("scripted follower"))
    }

    async fn install_snapshot(
        &self,
        _: Request<Streaming<v1::SnapshotChunk>>,
    ) -> Result<tonic::Response<v1::InstallSnapshotResponse>, Status> {
        Err(Status::unimplemented("scripted follower"))
    }

    async fn transfer_leader(
        &self,
        _: Request<v1::TransferLeaderRequest>,
    ) -> Result<tonic::Response<v1::TransferLeaderResponse>, Status> {
        Err(Status::unimplemented("scripted follower"))
    }
}

/// Serves `service` on an ephemeral loopback port and returns its address.
fn serve(service: impl RaftRpc) -> String {
    let incoming = TcpIncoming::bind("127.0.0.1:0".parse().expect("address")).expect("bind");
    let addr = incoming.local_addr().expect("local address").to_string();
    tokio::spawn(
        Server::builder()
            .add_service(RaftServer::new(service))
            .serve_with_incoming(incoming),
    );
    addr
}

/// The leader's client for the follower at `addr`, waiting at least `patience` for answers.
async fn leader_client(addr: &str, patience: Duration) -> LeaderClient {
    let mut network = GrpcNetwork::<MemorySnapshot>::new(
        PeerTransport::default(),
        PeerOptions {
            min_rpc_timeout: patience,
            ..PeerOptions::default()
        },
    );
    RaftNetworkFactory::<Types>::new_client(
        &mut network,
        2,
        &Node {
            addr: addr.to_owned(),
        },
    )
    .await
}

fn log_id(index: u64) -> LogId {
    LogId::new(LeaderId::new(1, 1), index)
}

/// An entry-less append from leader 1 in term 1 claiming the follower matches up to `index`.
fn append(index: u64) -> AppendEntriesRequest<Types> {
    AppendEntriesRequest {
        vote: Vote::new_committed(1, 1),
        prev_log_id: Some(log_id(index)),
        leader_commit: None,
        entries: Vec::new(),
    }
}

type Answers<'s> =
    BoxStream<'s, Result<openraft::raft::StreamAppendResult<Types>, RPCError<Types>>>;

async fn next_answer(
    answers: &mut Answers<'_>,
) -> Option<Result<openraft::raft::StreamAppendResult<Types>, RPCError<Types>>> {
    tokio::time::timeout(STEP, answers.next())
        .await
        .expect("the pipeline answers or ends")
}

type LeaderClient = <GrpcNetwork<MemorySnapshot> as RaftNetworkFactory<Types>>::Network;

/// Opens a pipeline on `client` carrying entry-less appends 1..=`count` (then, if `keep_open`,
/// nothing more, without ending).
async fn open_pipeline(client: &mut LeaderClient, count: u64, keep_open: bool) -> Answers<'_> {
    let requests = futures_util::stream::iter((1..=count).map(append));
    let input = if keep_open {
        requests.chain(futures_util::stream::pending()).boxed()
    } else {
        requests.boxed()
    };
    RaftNetworkV2::<Types>::stream_append(client, input, RPCOption::new(Duration::from_millis(50)))
        .await
        .expect("stream opens")
}

/// The follower answers nothing until it holds two requests. A sender that waited for each
/// answer before sending the next request would never get there; the pipeline sends both (its
/// depth is at least two) and hands back every answer in request order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_go_out_before_earlier_answers_arrive() {
    let received = Arc::new(AtomicUsize::new(0));
    let addr = serve(ScriptedFollower {
        script: Script::HoldUntil(2),
        received: Arc::clone(&received),
    });
    let count = MAX_APPENDS_IN_FLIGHT as u64 + 1;
    let mut client = leader_client(&addr, STEP).await;
    let mut answers = open_pipeline(&mut client, count, false).await;
    for index in 1..=count {
        match next_answer(&mut answers).await {
            Some(Ok(Ok(matched))) => assert_eq!(matched, Some(log_id(index))),
            other => panic!("answer {index}: expected a match, got {other:?}"),
        }
    }
    assert!(
        next_answer(&mut answers).await.is_none(),
        "the stream ends after the input ends and everything is answered"
    );
    assert_eq!(received.load(Ordering::SeqCst), count as usize);
}

/// No more than [`MAX_APPENDS_IN_FLIGHT`] requests are ever unanswered: a follower that waits
/// for one more before answering receives exactly that many, and the stream then ends as
/// `Unreachable` when the oldest has waited out its patience.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_the_pipeline_depth_is_unanswered() {
    let received = Arc::new(AtomicUsize::new(0));
    let addr = serve(ScriptedFollower {
        script: Script::HoldUntil(MAX_APPENDS_IN_FLIGHT + 1),
        received: Arc::clone(&received),
    });
    let count = MAX_APPENDS_IN_FLIGHT as u64 + 3;
    let mut client = leader_client(&addr, Duration::from_millis(300)).await;
    let mut answers = open_pipeline(&mut client, count, true).await;
    match next_answer(&mut answers).await {
        Some(Err(RPCError::Unreachable(error))) => {
            assert!(error.to_string().contains("no answer"), "{error}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert_eq!(received.load(Ordering::SeqCst), MAX_APPENDS_IN_FLIGHT);
}

/// A follower that stops answering while requests are outstanding ends the stream with
/// `Unreachable` after the patience runs out, even though the connection stays open and the
/// leader's input never ends, so openraft can back off and reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_that_stops_answering_ends_the_stream_as_unreachable() {
    let received = Arc::new(AtomicUsize::new(0));
    let addr = serve(ScriptedFollower {
        script: Script::GoSilentAfter(1),
        received: Arc::clone(&received),
    });
    let mut client = leader_client(&addr, Duration::from_millis(300)).await;
    let mut answers = open_pipeline(&mut client, 2, true).await;
    match next_answer(&mut answers).await {
        Some(Ok(Ok(matched))) => assert_eq!(matched, Some(log_id(1))),
        other => panic!("expected the first answer, got {other:?}"),
    }
    match next_answer(&mut answers).await {
        Some(Err(RPCError::Unreachable(error))) => {
            assert!(error.to_string().contains("no answer"), "{error}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(next_answer(&mut answers).await.is_none(), "the stream ends");
    assert_eq!(
        received.load(Ordering::SeqCst),
        2,
        "both requests were sent"
    );
}

/// The follower's side, on a real openraft node: a good request is answered, a request without
/// a vote ends the stream with INVALID_ARGUMENT after that answer, and the node keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_request_ends_the_stream_after_the_good_ones() {
    let config = Arc::new(Config::default().validate().expect("valid config"));
    let (raft, machine) = memory_raft(2, config).await;
    let addr = serve(RaftService::new(
        raft.clone(),
        machine,
        Arc::new(NotForwarding),
        std::future::pending(),
    ));
    let mut client = RaftClient::connect(format!("http://{addr}"))
        .await
        .expect("connects");
    let good = v1::AppendEntriesRequest {
        vote: Some(v1::Vote {
            term: 1,
            node_id: 1,
            committed: true,
        }),
        prev_log_id: None,
        entries: Vec::new(),
        leader_commit: None,
    };
    let malformed = v1::AppendEntriesRequest {
        vote: None,
        ..good.clone()
    };
    let mut answers = client
        .stream_append(futures_util::stream::iter([good.clone(), malformed]))
        .await
        .expect("stream opens")
        .into_inner();
    let first = tokio::time::timeout(STEP, answers.message())
        .await
        .expect("answered in time")
        .expect("the good request is answered");
    assert!(
        matches!(
            first.and_then(|answer| answer.result),
            Some(v1::stream_append_response::Result::Matched(v1::Matched {
                log_id: None
            }))
        ),
        "an empty log matches an append after nothing"
    );
    let error = tokio::time::timeout(STEP, answers.message())
        .await
        .expect("answered in time")
        .expect_err("the malformed request ends the stream");
    assert_eq!(error.code(), tonic::Code::InvalidArgument, "{error}");
    assert!(error.message().contains("vote"), "{error}");

    // The node took no harm: a new stream is answered.
    let mut answers = client
        .stream_append(futures_util::stream::iter([good]))
        .await
        .expect("stream opens")
        .into_inner();
    let answer = tokio::time::timeout(STEP, answers.message())
        .await
        .expect("answered in time")
        .expect("answered");
    assert!(answer.is_some());
    raft.shutdown().await.expect("raft stops");
}

/// A follower that was down long enough for its retry delay to pass the pipeline's patience
/// is replicated to again once it is back: the pipeline is made after the backoff's wait,
/// so the wait does not count against its patience. (Made before the wait, every pipeline
/// gave up at once as "no answer", the delay grew, and the follower never caught up.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_that_comes_back_after_a_long_backoff_is_replicated_to() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = listener.local_addr().expect("address");
    drop(listener);
    let patience = Duration::from_millis(40);
    let mut client = leader_client(&addr.to_string(), patience).await;
    // Refused connections: after these the retry delay (25 ms doubling) exceeds the patience.
    for _ in 0..4 {
        let mut answers = open_pipeline(&mut client, 1, false).await;
        match next_answer(&mut answers).await {
            Some(Err(RPCError::Unreachable(_))) => {}
            other => panic!("expected Unreachable from a closed port, got {other:?}"),
        }
    }
    let incoming = TcpIncoming::bind(addr).expect("bind the follower's port again");
    tokio::spawn(
        Server::builder()
            .add_service(RaftServer::new(ScriptedFollower {
                script: Script::HoldUntil(1),
                received: Arc::new(AtomicUsize::new(0)),
            }))
            .serve_with_incoming(incoming),
    );
    // openraft may hold the first request back (its own backoff), here for longer than the
    // pipeline's patience: that wait is not the follower's.
    let input = futures_util::stream::once(async move {
        tokio::time::sleep(patience * 3).await;
        append(1)
    })
    .chain(futures_util::stream::iter([append(2)]))
    .boxed();
    let mut answers =
        RaftNetworkV2::<Types>::stream_append(&mut client, input, RPCOption::new(patience))
            .await
            .expect("stream opens");
    for index in 1..=2 {
        match next_answer(&mut answers).await {
            Some(Ok(Ok(matched))) => assert_eq!(matched, Some(log_id(index))),
            other => panic!("answer {index} after the follower came back: {other:?}"),
        }
    }
}
