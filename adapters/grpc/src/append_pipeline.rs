//! Pipelined replication, the leader's side: openraft's stream of append requests for one
//! follower goes out on a `StreamAppend` gRPC stream without waiting for earlier answers, and
//! the answers come back, in order, as openraft's response stream.
//!
//! The response stream is the only thing that polls openraft's request stream. Requests are
//! pulled from it and handed to tonic through a small channel in the same task that reads the
//! answers, so dropping the response stream drops the request stream at once. (If tonic's
//! connection task polled openraft's stream itself, a stream to a dead peer could keep it, and
//! the replication state it locks, alive until the connection died.)
//!
//! The call itself is made inside the pipeline, and requests are sent while its headers are
//! still on their way: a heartbeat (a one-request stream) then costs one round trip, as a
//! unary call would.
//!
//! A follower that stops answering ends the stream: when the oldest unanswered request has
//! waited `patience`, the stream yields `Unreachable` and openraft backs off and reconnects.
//! An idle stream (nothing unanswered) stays open however long the leader has nothing to send.

use std::collections::VecDeque;
use std::time::Duration;

use dbadger_core::raft_types::RaftTypes;
use dbadger_proto::v1;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, Stream, StreamExt};
use openraft::errors::{NetworkError, RPCError, Unreachable};
use openraft::raft::{AppendEntriesRequest, StreamAppendResult};
use openraft::{AsyncRuntime, RaftTypeConfig};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::Instant;
use tonic::Streaming;

use crate::convert::raft as wire;
use crate::rpc_failure::Failure;

type Types<RT> = RaftTypes<RT>;

/// One item of openraft's response stream: an answer, or why the stream ended.
pub(crate) type AnswerItem<RT> = Result<StreamAppendResult<Types<RT>>, RPCError<Types<RT>>>;

/// How many append requests may be on their way to one follower, unanswered, at once.
///
/// While the limit is reached, new log entries wait and go out together in the next request,
/// so a small depth still moves large batches: each request carries every entry written since
/// the previous one (up to openraft's `max_payload_entries`). Two keeps a request travelling
/// while the follower stores the previous one. On this project's benchmark (3 nodes and the
/// clients in one process on 2 cores, docs/benchmarks.md) deeper pipelines sent more, smaller
/// requests: 32 in flight gave embedded writes at 64 clients 5% more throughput than 2, and
/// writes over gRPC, where the nodes' CPU is the limit, 9% less.
pub const MAX_APPENDS_IN_FLIGHT: usize = 2;

// One request in flight at a time would not be a pipeline.
const _: () = assert!(MAX_APPENDS_IN_FLIGHT >= 2);

/// The sending end of a pipeline's request body.
pub(crate) struct PipelineRequests {
    sender: mpsc::Sender<v1::AppendEntriesRequest>,
}

impl PipelineRequests {
    /// A sending end and the request body it feeds, to hand to tonic when making the call.
    pub(crate) fn channel() -> (
        PipelineRequests,
        impl Stream<Item = v1::AppendEntriesRequest> + Send + 'static,
    ) {
        let (sender, receiver) = mpsc::channel(MAX_APPENDS_IN_FLIGHT);
        let outgoing = futures_util::stream::unfold(receiver, |mut receiver| async move {
            let request = receiver.recv().await?;
            Some((request, receiver))
        });
        (PipelineRequests { sender }, outgoing)
    }
}

/// The `StreamAppend` call made with a [`PipelineRequests`] body, resolving to the answers.
pub(crate) type PendingCall =
    BoxFuture<'static, Result<Streaming<v1::StreamAppendResponse>, tonic::Status>>;

/// Where the answers come from.
enum Answers {
    /// The call is being made. Requests already go out meanwhile: waiting for the follower's
    /// response headers first would cost every stream, and every heartbeat, a round trip.
    Calling {
        call: PendingCall,
    },
    Open(Box<Streaming<v1::StreamAppendResponse>>),
}

/// Everything the response stream carries between answers.
struct Pipeline<S> {
    /// openraft's requests; `None` once it has ended.
    input: Option<S>,
    /// Into tonic's request body; dropped (ending the body) when the input ends.
    sender: Option<mpsc::Sender<v1::AppendEntriesRequest>>,
    answers: Answers,
    /// When each unanswered request was handed over, oldest first.
    unanswered: VecDeque<Instant>,
    patience: Duration,
}

/// What happened next on a pipeline.
enum Event<C: RaftTypeConfig> {
    Connected(Streaming<v1::StreamAppendResponse>),
    Answer(Option<Result<v1::StreamAppendResponse, tonic::Status>>),
    Request(Option<AppendEntriesRequest<C>>),
    Stalled,
}

/// openraft's response stream for a pipeline: `requests` is the sending end whose body `call`
/// sends. The call is made as the stream is polled; if it fails, the stream's first item says
/// why.
pub(crate) fn pipeline<RT, S>(
    input: S,
    requests: PipelineRequests,
    call: PendingCall,
    patience: Duration,
) -> BoxStream<'static, AnswerItem<RT>>
where
    RT: AsyncRuntime,
    S: Stream<Item = AppendEntriesRequest<Types<RT>>> + Send + Unpin + 'static,
{
    let pipeline = Pipeline {
        input: Some(input),
        sender: Some(requests.sender),
        answers: Answers::Calling { call },
        unanswered: VecDeque::new(),
        patience,
    };
    futures_util::stream::unfold(Some(pipeline), |pipeline| async move {
        let mut pipeline = pipeline?;
        let item = pipeline.next_answer::<RT>().await?;
        let go_on = matches!(item, Ok(Ok(_)));
        Some((item, go_on.then_some(pipeline)))
    })
    .boxed()
}

impl<S> Pipeline<S> {
    /// Sends requests as they come while waiting for the next answer; `None` when the stream
    /// is over (the input ended and everything was answered, or the follower ended it).
    async fn next_answer<RT>(&mut self) -> Option<AnswerItem<RT>>
    where
        RT: AsyncRuntime,
        S: Stream<Item = AppendEntriesRequest<Types<RT>>> + Unpin,
    {
        loop {
            if self.input.is_none() && self.unanswered.is_empty() {
                return None;
            }
            match self.next_event::<Types<RT>>().await {
                Event::Connected(answers) => self.answers = Answers::Open(Box::new(answers)),
                Event::Request(Some(request)) => {
                    let sender = self.sender.as_ref()?;
                    // The channel holds at most the unanswered requests, fewer than its
                    // capacity, so it is never full while the call is alive.
                    match sender.try_send(wire::append_request_to_wire(&request)) {
                        Ok(()) => self.unanswered.push_back(Instant::now()),
                        Err(TrySendError::Closed(_)) => {
                            // tonic dropped the body: the call has failed, and the answers
                            // say why.
                            self.input = None;
                            self.sender = None;
                        }
                        Err(TrySendError::Full(_)) => {
                            return Some(Err(RPCError::Unreachable(Unreachable::from_string(
                                "the follower's connection is not taking appends",
                            ))));
                        }
                    }
                }
                Event::Request(None) => {
                    self.input = None;
                    self.sender = None;
                }
                Event::Answer(None) => return None,
                Event::Answer(Some(Err(status))) => {
                    return Some(Err(Failure::from_status(&status).into_rpc::<RT>()));
                }
                Event::Answer(Some(Ok(answer))) => {
                    if self.unanswered.pop_front().is_none() {
                        return Some(Err(RPCError::Network(NetworkError::from_string(
                            "the follower answered an append it was not sent",
                        ))));
                    }
                    return Some(
                        wire::stream_append_result_from_wire(answer).map_err(|error| {
                            RPCError::Network(NetworkError::from_string(error.to_string()))
                        }),
                    );
                }
                Event::Stalled => {
                    return Some(Err(RPCError::Unreachable(Unreachable::from_string(
                        format!("no answer to an append within {:?}", self.patience),
                    ))));
                }
            }
        }
    }

    /// Waits for the call to be made or the next answer, for the next request (while fewer
    /// than [`MAX_APPENDS_IN_FLIGHT`] are unanswered), or for the oldest unanswered request's
    /// patience to run out. Each branch is cancel-safe: the
    /// call and the input are polled in place, and a request taken from the input is returned
    /// in the same poll.
    async fn next_event<C>(&mut self) -> Event<C>
    where
        C: RaftTypeConfig,
        S: Stream<Item = AppendEntriesRequest<C>> + Unpin,
    {
        let Pipeline {
            input,
            answers,
            unanswered,
            patience,
            ..
        } = self;
        // Only a request handed over can wait for an answer: a call with nothing sent yet may
        // not complete before its first message (openraft may hold that back for its own
        // backoff), and its connection attempt has its own timeout.
        let waiting_since = unanswered.front().copied();
        let answer = async {
            match answers {
                Answers::Calling { call } => match call.await {
                    Ok(answers) => Event::Connected(answers),
                    Err(status) => Event::Answer(Some(Err(status))),
                },
                Answers::Open(answers) => Event::Answer(answers.next().await),
            }
        };
        let room = unanswered.len() < MAX_APPENDS_IN_FLIGHT;
        let request = async {
            match (input, room) {
                (Some(input), true) => input.next().await,
                _ => std::future::pending().await,
            }
        };
        let stall = async {
            match waiting_since {
                Some(since) => tokio::time::sleep_until(since + *patience).await,
                None => std::future::pending().await,
            }
        };
        futures_util::select_biased! {
            event = answer.fuse() => event,
            request = request.fuse() => Event::Request(request),
            () = stall.fuse() => Event::Stalled,
        }
    }
}
