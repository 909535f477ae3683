//! `RaftStateMachine` over a [`StateMachineStore`].

use std::io;
use std::sync::Arc;

use futures_util::{Stream, TryStreamExt};
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{AsyncRuntime, EntryPayload, OptionalSend, RaftSnapshotBuilder, Snapshot};

use crate::limits::Limits;
use crate::raft_types::{LogId, RaftTypes, SnapshotMeta, StoredMembership};
use crate::response::Response;
use crate::rules;
use crate::snapshot::{build_snapshot, install_snapshot};
use crate::storage::{StateMachineStore, StateRead, StateWrite};

/// Runs a piece of work that blocks its thread (a store's commit, which may flush to disk), in
/// whatever way keeps the async runtime responsive. The work must run on the calling thread: a
/// store's write transaction may be bound to it.
pub type BlockingSection = fn(&mut dyn FnMut());

/// The [`BlockingSection`] that simply runs the work: for runtimes with nothing better to do
/// (one thread, or the simulator).
pub fn run_in_place(work: &mut dyn FnMut()) {
    work()
}

/// Runs `work` through `section` and returns its result; `None` if the section never ran it.
fn run_once<T>(section: BlockingSection, work: impl FnOnce() -> T) -> Option<T> {
    let mut work = Some(work);
    let mut result = None;
    section(&mut || {
        if let Some(work) = work.take() {
            result = Some(work());
        }
    });
    result
}

/// The state machine of one node, as openraft sees it: a shared handle to a
/// [`StateMachineStore`].
#[derive(Debug)]
pub struct RaftStateMachineStore<S> {
    store: Arc<S>,
    limits: Limits,
    blocking: BlockingSection,
}

impl<S> Clone for RaftStateMachineStore<S> {
    fn clone(&self) -> Self {
        RaftStateMachineStore {
            store: Arc::clone(&self.store),
            limits: self.limits,
            blocking: self.blocking,
        }
    }
}

impl<S: StateMachineStore> RaftStateMachineStore<S> {
    /// Wraps a state-machine store; answers are bounded by the default [`Limits`].
    pub fn new(store: Arc<S>) -> RaftStateMachineStore<S> {
        RaftStateMachineStore {
            store,
            limits: Limits::default(),
            blocking: run_in_place,
        }
    }

    /// The same store with the apply's commit run through `blocking`. On a multi-threaded
    /// runtime the commit's flush would otherwise hold a worker thread, and with it the tasks
    /// its answers just woke (the requests waiting for them), until the flush ends.
    pub fn with_blocking_section(self, blocking: BlockingSection) -> RaftStateMachineStore<S> {
        RaftStateMachineStore { blocking, ..self }
    }

    /// The same store with the node's limits: the answers of applied commands (the keys a
    /// `DeleteRange` lists) are bounded by `limits.max_response_bytes`. Only the answer is
    /// bounded, never the write, so replicas with other limits still reach the same state.
    pub fn with_limits(self, limits: Limits) -> RaftStateMachineStore<S> {
        RaftStateMachineStore { limits, ..self }
    }

    /// The underlying store, for reads.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }
}

type SnapshotOf<S> = Snapshot<
    crate::raft_types::LeaderId,
    crate::raft_types::NodeId,
    crate::raft_types::Node,
    <S as StateMachineStore>::Snapshot,
>;

impl<S, RT> RaftSnapshotBuilder<RaftTypes<RT>> for RaftStateMachineStore<S>
where
    S: StateMachineStore,
    RT: AsyncRuntime,
{
    type SnapshotData = S::Snapshot;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<S>, io::Error> {
        let (meta, snapshot) = build_snapshot(&*self.store)?;
        Ok(Snapshot { meta, snapshot })
    }
}

impl<S, RT> RaftStateMachine<RaftTypes<RT>> for RaftStateMachineStore<S>
where
    S: StateMachineStore,
    RT: AsyncRuntime,
{
    type SnapshotData = S::Snapshot;
    type SnapshotBuilder = RaftStateMachineStore<S>;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        let state = self.store.read()?.applied_state()?;
        Ok((state.last_applied, state.membership))
    }

    /// Applies every entry the stream yields in one transaction, which stores the writes and
    /// the applied log id together. The answers may go out while the transaction flushes (see
    /// [`StateWrite::commit_and_acknowledge`]): they depend only on the committed entries, and
    /// reads opened after them wait for the commit.
    async fn apply<Strm>(&mut self, entries: Strm) -> Result<(), io::Error>
    where
        Strm:
            Stream<Item = Result<EntryResponder<RaftTypes<RT>>, io::Error>> + Unpin + OptionalSend,
    {
        let batch: Vec<EntryResponder<RaftTypes<RT>>> = entries.try_collect().await?;
        let Some((last, _)) = batch.last() else {
            return Ok(());
        };
        let last_applied = last.log_id;
        let mut txn = self.store.write()?;
        let mut applied = txn.applied_state()?;
        let mut responses = Vec::with_capacity(batch.len());
        for (entry, responder) in batch {
            let response = match &entry.payload {
                EntryPayload::Blank => Response::Empty,
                EntryPayload::Normal(command) => {
                    rules::apply(command, entry.log_id.index, &mut txn, &self.limits)?
                }
                EntryPayload::Membership(membership) => {
                    applied.membership =
                        StoredMembership::new(Some(entry.log_id), membership.clone());
                    Response::Empty
                }
            };
            responses.push((responder, response));
        }
        applied.last_applied = Some(last_applied);
        txn.set_applied_state(&applied)?;
        let acknowledge = || {
            for (responder, response) in responses {
                if let Some(responder) = responder {
                    responder.send(response);
                }
            }
        };
        match run_once(self.blocking, move || {
            txn.commit_and_acknowledge(acknowledge)
        }) {
            Some(committed) => Ok(committed?),
            None => Err(io::Error::other("the state machine's commit did not run")),
        }
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    /// No snapshot while a restore is staged (see [`crate::restore`]), unless openraft must
    /// have one (`force`: at start, with logs purged and no snapshot, which this store never
    /// leaves behind). A store that cannot be read builds one, and reports its error there.
    async fn try_create_snapshot_builder(&mut self, force: bool) -> Option<Self::SnapshotBuilder> {
        let allowed = self
            .store
            .read()
            .and_then(|view| crate::restore::snapshot_allowed(&view))
            .unwrap_or(true);
        (force || allowed).then(|| self.clone())
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: S::Snapshot,
    ) -> Result<(), io::Error> {
        Ok(install_snapshot(&*self.store, meta, snapshot)?)
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<SnapshotOf<S>>, io::Error> {
        let current = self.store.current_snapshot()?;
        Ok(current.map(|(meta, snapshot)| Snapshot { meta, snapshot }))
    }
}
