//! How a node serves a write or a read: it tries locally, and when it does not lead it
//! forwards to the leader, following `routing.rs`'s policy after each setback.
//!
//! Two promises are kept here:
//! - A write is acknowledged only once it is applied on the node that answers: a follower that
//!   forwarded it waits until it has applied the write's revision itself, so a Local read on the
//!   node that acknowledged a write sees it.
//! - A leader that has heard from no quorum for the patience (one election timeout) refuses new
//!   writes before proposing them (not applied) and abandons writes it already proposed
//!   (outcome unknown), instead of holding them until the caller's deadline.

use std::pin::pin;
use std::time::Duration;

use dbadger_core::raft_types::NodeId;
use dbadger_core::storage::StateMachineStore;
use dbadger_core::{
    Command, Outcome, Query, ReadPreference, RequestError, Response, StorageError, rules,
};
use dbadger_grpc::ForwardError;
use futures_util::future::{Either, select};
use openraft::ReadPolicy;
use openraft::ServerState;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::errors::{ClientWriteError, ForwardToLeader, LinearizableReadError, RaftError};
use tokio::time::Instant;

use crate::admission::admits;
use crate::node::{Node, Types, remaining, stopped, timeout};
use crate::routing::{
    Delivery, LEADER_POLL, Next, Patience, RequestKind, Setback, next_step, quorum_lost,
};

/// The outcome of trying a request on this node.
pub(crate) enum Attempt<T> {
    Done(Result<T, RequestError>),
    /// This node does not lead; openraft's hint says who might.
    NotLeader(ForwardToLeader<Types>),
}

/// What a leader knows of its quorum.
enum QuorumView {
    /// This node does not lead (or is its own quorum): nothing to watch.
    NotWatched,
    /// It leads; a quorum last acknowledged it this long ago (`None`: not yet).
    Leading(Option<Duration>),
}

fn storage_error(error: StorageError) -> RequestError {
    match error {
        StorageError::Full { max_bytes } => RequestError::StorageFull { max_bytes },
        other => RequestError::Internal(other.to_string()),
    }
}

fn read_error(error: rules::ReadError) -> RequestError {
    match error {
        rules::ReadError::Storage(error) => storage_error(error),
        rules::ReadError::ResponseTooLarge { bytes, max } => {
            RequestError::ResponseTooLarge { bytes, max }
        }
        other => RequestError::Internal(other.to_string()),
    }
}

fn delivery(failure: &ForwardError) -> Delivery {
    if failure.may_have_arrived {
        Delivery::MaybeArrived
    } else {
        Delivery::NotSent
    }
}

impl<S: StateMachineStore> Node<S> {
    /// openraft's hint as a setback: the leader to forward to, when it is usable.
    fn not_leader(&self, hint: &ForwardToLeader<Types>) -> Setback {
        let leader = match (hint.leader_id, &hint.leader_node) {
            (Some(id), Some(node)) if id != self.id => Some((id, node.addr.clone())),
            _ => None,
        };
        Setback::NotLeader {
            leader,
            named: hint.leader_id,
        }
    }

    /// Pauses, then waits a little for the leader to be someone other than `stale` (any
    /// leader, for `None`). The pause keeps a retry from ever being a busy loop.
    async fn pause_for_leader(&self, stale: Option<NodeId>, deadline: Instant) {
        tokio::time::sleep(LEADER_POLL.min(remaining(deadline))).await;
        let wait = remaining(deadline).min(LEADER_POLL * 10);
        if wait.is_zero() {
            return;
        }
        let _ = self
            .raft
            .wait(Some(wait))
            .metrics(
                move |metrics| metrics.current_leader.is_some() && metrics.current_leader != stale,
                "a new leader is known",
            )
            .await;
    }

    /// Runs `local` on this node; when it does not lead, runs `remote` against the leader
    /// (if `may_forward`), following [`next_step`] after each setback until the
    /// request is answered, fails, or its deadline passes.
    pub(crate) async fn routed<T, LocalFuture, RemoteFuture>(
        &self,
        deadline: Instant,
        kind: RequestKind,
        may_forward: bool,
        local: impl Fn() -> LocalFuture,
        remote: impl Fn(String) -> RemoteFuture,
    ) -> Result<T, RequestError>
    where
        LocalFuture: Future<Output = Attempt<T>>,
        RemoteFuture: Future<Output = Result<T, ForwardError>>,
    {
        let started = Instant::now();
        let mut target: Option<(NodeId, String)> = None;
        loop {
            let setback = match target.take() {
                Some((leader, addr)) => match remote(addr.clone()).await {
                    Ok(value) => return Ok(value),
                    Err(failure) => Setback::ForwardFailed {
                        delivery: delivery(&failure),
                        leader: (leader, addr),
                        error: failure.error,
                    },
                },
                None => match tokio::time::timeout(remaining(deadline), local()).await {
                    Err(_) => return Err(self.local_timeout(kind)),
                    Ok(Attempt::Done(result)) => return result,
                    Ok(Attempt::NotLeader(hint)) => self.not_leader(&hint),
                },
            };
            let patience = Patience {
                waited: started.elapsed(),
                limit: self.patience,
                remaining: remaining(deadline),
            };
            match next_step(kind, may_forward, setback, patience) {
                Next::Forward(leader, addr) => target = Some((leader, addr)),
                Next::AwaitLeader { stale } => self.pause_for_leader(stale, deadline).await,
                Next::Fail(error) => return Err(error),
            }
        }
    }

    /// The deadline passed while this node served the request itself: a read changed nothing;
    /// a write or membership step was proposed and may yet apply.
    fn local_timeout(&self, kind: RequestKind) -> RequestError {
        match kind {
            RequestKind::Read => timeout(Outcome::NotApplied),
            RequestKind::Write | RequestKind::Membership => timeout(Outcome::Unknown),
        }
    }

    /// Proposes a write; a follower passes it to the leader when `may_forward`, and answers
    /// only once it has applied the write itself.
    pub(crate) async fn write_routed(
        &self,
        command: Command,
        deadline: Instant,
        may_forward: bool,
    ) -> Result<Response, RequestError> {
        let local = || self.write_here(&command);
        let remote = |addr: String| {
            let command = &command;
            async move {
                let response = self
                    .forwarder
                    .write(&addr, command, remaining(deadline))
                    .await?;
                if let Some(revision) = response.revision() {
                    // Applied on the leader: the outcome of a timeout here is known to be
                    // "applied", which no error can say, so it is reported as unknown.
                    self.await_applied_here(revision, deadline, Outcome::Unknown)
                        .await
                        .map_err(|error| ForwardError {
                            error,
                            may_have_arrived: true,
                        })?;
                }
                Ok(response)
            }
        };
        self.routed(deadline, RequestKind::Write, may_forward, local, remote)
            .await
    }

    /// One attempt at a write on this node: refused before proposing when this leader has
    /// lost its quorum or its store is nearly full (see [`crate::admission`]), abandoned
    /// (outcome unknown) when it loses the quorum while the write waits.
    async fn write_here(&self, command: &Command) -> Attempt<Response> {
        if let QuorumView::Leading(Some(silent)) = self.quorum_view()
            && quorum_lost(silent, self.patience)
        {
            return Attempt::Done(Err(RequestError::unavailable(
                format!(
                    "the leader has heard from no quorum for {} ms",
                    silent.as_millis()
                ),
                Outcome::NotApplied,
            )));
        }
        if let Some(space) = self.store.space()
            && !admits(command, space)
        {
            return Attempt::Done(Err(RequestError::StorageFull {
                max_bytes: space.max_bytes,
            }));
        }
        let write = pin!(self.raft.client_write(command.clone()));
        let lost = pin!(self.quorum_lost_while_waiting());
        let written = match select(write, lost).await {
            Either::Left((written, _)) => written,
            Either::Right(((), _)) => {
                return Attempt::Done(Err(RequestError::unavailable(
                    "the leader lost its quorum",
                    Outcome::Unknown,
                )));
            }
        };
        match written {
            Ok(written) => Attempt::Done(Ok(written.data)),
            Err(RaftError::Fatal(fatal)) => Attempt::Done(Err(stopped(&fatal, Outcome::Unknown))),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(hint))) => {
                Attempt::NotLeader(hint)
            }
            Err(RaftError::APIError(ClientWriteError::LogEntryDiscarded(_))) => {
                Attempt::Done(Err(RequestError::unavailable(
                    "leadership changed while the write waited",
                    Outcome::Unknown,
                )))
            }
            Err(RaftError::APIError(other)) => {
                Attempt::Done(Err(RequestError::Internal(other.to_string())))
            }
        }
    }

    /// What this node knows of its quorum now. (It reads the metrics in place, without an
    /// await, on every write: no copy, and no borrow held across a suspension.)
    fn quorum_view(&self) -> QuorumView {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow_watched();
        if metrics.state != ServerState::Leader {
            return QuorumView::NotWatched;
        }
        let mut voters = metrics.membership_config.membership().voter_ids();
        if voters.next() == Some(self.id) && voters.next().is_none() {
            return QuorumView::NotWatched;
        }
        QuorumView::Leading(
            metrics
                .last_quorum_acked
                .as_ref()
                .map(|acked| openraft::Instant::elapsed(&**acked)),
        )
    }

    /// Completes when this node, leading, has heard from no quorum for longer than the
    /// patience (counting from now when it has heard from none yet). Never completes while it
    /// does not lead: a proposal then ends on its own, with a hint or a discarded entry.
    async fn quorum_lost_while_waiting(&self) {
        let started = Instant::now();
        let check_every = (self.patience / 4).max(Duration::from_millis(10));
        loop {
            tokio::time::sleep(check_every).await;
            let silent = match self.quorum_view() {
                QuorumView::NotWatched => continue,
                QuorumView::Leading(Some(silent)) => silent,
                QuorumView::Leading(None) => started.elapsed(),
            };
            if quorum_lost(silent, self.patience) {
                return;
            }
        }
    }

    /// Answers a read; Leader reads confirm leadership with a ReadIndex round first. A read
    /// never applies anything: every failure is "not applied".
    pub(crate) async fn read_routed(
        &self,
        query: Query,
        preference: ReadPreference,
        deadline: Instant,
        may_forward: bool,
    ) -> Result<Response, RequestError> {
        let answer = if preference == ReadPreference::Local {
            self.read_local(&query)
        } else {
            self.read_linearizable(&query, deadline, may_forward).await
        };
        answer.map_err(|error| error.with_outcome(Outcome::NotApplied))
    }

    async fn read_linearizable(
        &self,
        query: &Query,
        deadline: Instant,
        may_forward: bool,
    ) -> Result<Response, RequestError> {
        let local = || async {
            match self.raft.ensure_linearizable(ReadPolicy::ReadIndex).await {
                Ok(_) => Attempt::Done(self.read_local(query)),
                Err(RaftError::Fatal(fatal)) => {
                    Attempt::Done(Err(stopped(&fatal, Outcome::NotApplied)))
                }
                Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(hint))) => {
                    Attempt::NotLeader(hint)
                }
                Err(RaftError::APIError(LinearizableReadError::QuorumNotEnough(_))) => {
                    Attempt::Done(Err(RequestError::unavailable(
                        "the leader cannot reach a quorum",
                        Outcome::NotApplied,
                    )))
                }
            }
        };
        let remote = |addr: String| async move {
            self.forwarder
                .linearizable_read(&addr, query, remaining(deadline))
                .await
        };
        self.routed(deadline, RequestKind::Read, may_forward, local, remote)
            .await
    }

    fn read_local(&self, query: &Query) -> Result<Response, RequestError> {
        let view = self.store.read().map_err(storage_error)?;
        rules::read(query, &view, &self.limits).map_err(read_error)
    }
}
