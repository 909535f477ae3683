//! Recovery after losing a quorum (`StartMode::Recover`, `dbadger node --recover`): one
//! survivor's data becomes a new one-node cluster that keeps everything the survivor had
//! applied or held in its log, under a new node id, a new cluster id and a higher term.
//!
//! The procedure runs before the node starts, on its stopped data directory:
//!
//! 1. Unless forced, ask the other voters of the old membership for their status: if enough
//!    of them answer to form a quorum with this node, the cluster is not lost, and recovering
//!    would split it; refuse.
//! 2. Build the new state in `data_dir/recovering/`: a fresh store (so a new node id), the old
//!    key space plus every entry of the old log applied on top (all of them: the survivor
//!    cannot know which of its last entries the lost nodes had committed, and keeping them loses
//!    nothing that was acknowledged), a membership of this node alone, a snapshot of it all, a
//!    vote one term above anything the old log holds, and a new cluster id (fencing: the old
//!    members, if they come back, are refused).
//! 3. Swap: the old `lmdb/` and `snapshots/` move aside to `*.before-recover-N/` (kept, never
//!    deleted here), the new ones take their place. An interrupted swap is finished on the next
//!    start.
//!
//! The node then starts as usual, elects itself and leads; new nodes join it as usual.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::ops::{Bound, ControlFlow};
use std::path::{Path, PathBuf};
use std::time::Duration;

use dbadger_core::raft_types::{
    EntryPayload, LogId, Membership, Node as NodeAddress, NodeId, StoredMembership, Vote,
};
use dbadger_core::storage::{
    AppliedState, KvWrite, LogStore, StateMachineStore, StateRead, StateWrite,
};
use dbadger_core::{Config, rules, snapshot};
use dbadger_grpc::PeerTransport;
use dbadger_lmdb::LmdbOptions;
use dbadger_proto::v1;

use crate::start_error::StartError;

const RECOVERING: &str = "recovering";
const STORE_PARTS: [&str; 2] = ["lmdb", "snapshots"];

/// How long the quorum check waits for each old voter.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

fn failed(reason: impl std::fmt::Display) -> StartError {
    StartError::Recover(reason.to_string())
}

/// Whether `reachable` of the old membership's `voters` voters (this node among them if it
/// votes) make a quorum.
pub(crate) fn quorum_reachable(voters: usize, reachable: usize) -> bool {
    voters > 0 && reachable * 2 > voters
}

/// The first `name.before-recover-N` that does not exist yet in `dir`.
fn aside_path(dir: &Path, name: &str) -> PathBuf {
    (1..)
        .map(|n| dir.join(format!("{name}.before-recover-{n}")))
        .find(|path| !path.exists())
        .unwrap_or_else(|| dir.join(format!("{name}.before-recover")))
}

/// Finishes a swap a crash interrupted: the new store is complete in `recovering/` (it is
/// built and closed before any move), so whatever of the old store is still in place moves
/// aside and the new one moves in. Nothing to do when there is no `recovering/`.
fn finish_swap(dir: &Path) -> Result<(), StartError> {
    let staged = dir.join(RECOVERING);
    if !staged.join("complete").exists() {
        // Built only partly before a crash: built again from the old store.
        if staged.exists() {
            fs::remove_dir_all(&staged).map_err(failed)?;
        }
        return Ok(());
    }
    for part in STORE_PARTS {
        let new = staged.join(part);
        if !new.exists() {
            continue;
        }
        let current = dir.join(part);
        if current.exists() {
            fs::rename(&current, aside_path(dir, part)).map_err(failed)?;
        }
        fs::rename(&new, &current).map_err(failed)?;
    }
    fs::remove_dir_all(&staged).map_err(failed)?;
    fs::File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(failed)
}

/// The voters of the membership the old node last knew, with their addresses.
fn last_membership(
    applied: &AppliedState,
    tail: &[dbadger_core::raft_types::LogEntry],
) -> Membership {
    tail.iter()
        .rev()
        .find_map(|entry| match &entry.payload {
            EntryPayload::Membership(membership) => Some(membership.clone()),
            _ => None,
        })
        .unwrap_or_else(|| applied.membership.membership().clone())
}

/// How many of `addresses` answer a status request within the probe timeout.
async fn answering(transport: &PeerTransport, addresses: &[String]) -> usize {
    let mut count = 0;
    for addr in addresses {
        let Ok(endpoint) = transport.endpoint(addr) else {
            continue;
        };
        let probe = async {
            let channel = endpoint
                .connect_timeout(PROBE_TIMEOUT)
                .connect()
                .await
                .ok()?;
            v1::cluster_client::ClusterClient::new(channel)
                .status(v1::StatusRequest {})
                .await
                .ok()
        };
        if let Ok(Some(_)) = tokio::time::timeout(PROBE_TIMEOUT, probe).await {
            count += 1;
        }
    }
    count
}

/// What a recovery keeps of the survivor: every entry after its applied state, the last log id
/// it holds, and the highest term it knows.
struct Survivor {
    tail: Vec<dbadger_core::raft_types::LogEntry>,
    last: LogId,
    term: u64,
}

/// Reads the survivor's stores and, unless forced, checks that the old cluster has lost its
/// quorum. `None`: the node is its cluster's only voter already (there is nothing to recover).
async fn survey<L: LogStore, S: StateMachineStore>(
    config: &Config,
    transport: &PeerTransport,
    (old_id, old_log, old_machine): (NodeId, &L, &S),
) -> Result<Option<Survivor>, StartError> {
    let bounds = old_log.log_bounds()?;
    let applied = old_machine.read()?.applied_state()?;
    let last = bounds.last.max(applied.last_applied);
    let Some(last) = last else {
        return Err(failed(
            "the node holds no data: there is nothing to recover",
        ));
    };
    let from = applied.last_applied.map_or(0, |id| id.index + 1);
    let tail = old_log.entries(from, last.index + 1)?;
    let old_membership = last_membership(&applied, &tail);
    let others: Vec<String> = old_membership
        .voter_ids()
        .filter(|id| *id != old_id)
        .filter_map(|id| old_membership.get_node(&id).map(|node| node.addr.clone()))
        .collect();
    let voters = old_membership.voter_ids().count();
    let votes_here = usize::from(old_membership.voter_ids().any(|id| id == old_id));
    if voters == 1 && votes_here == 1 {
        // Already the only voter (recovered before, and started again with the same flags):
        // there is nothing to recover.
        tracing::info!("this node is its cluster's only voter: nothing to recover, starting");
        return Ok(None);
    }
    if !config.force_recover {
        let answered = answering(transport, &others).await;
        if quorum_reachable(voters, answered + votes_here) {
            return Err(failed(format!(
                "{answered} of the other {} voters answer: the cluster still has a quorum, and \
                 recovering this node would split it; stop them first, or force the recovery",
                others.len()
            )));
        }
    }
    let term = old_log
        .vote()?
        .map_or(0, |vote| vote.leader_id.term)
        .max(last.leader_id.term);
    Ok(Some(Survivor { tail, last, term }))
}

/// Writes the recovered one-node cluster of `new_id` at `addr` into the empty `new` stores.
fn build<S: StateMachineStore, NL: LogStore, NS: StateMachineStore>(
    config: &Config,
    survivor: &Survivor,
    old_machine: &S,
    (new_id, new_log, new_machine): (NodeId, &NL, &NS),
    addr: &str,
) -> Result<(), StartError> {
    let view = old_machine.read()?;
    rebuild(
        &view,
        &survivor.tail,
        new_machine,
        config,
        survivor.last,
        new_id,
        addr,
    )?;
    drop(view);
    snapshot::build_snapshot(new_machine)?;
    new_log.purge_through(&survivor.last)?;
    new_log.save_committed(Some(&survivor.last))?;
    new_log.save_vote(&Vote::new(survivor.term + 1, new_id))?;
    new_log.save_cluster_id(crate::start::founded_cluster(new_id))?;
    Ok(())
}

/// The address the recovered node records for itself in its new membership.
fn recovered_address(config: &Config) -> String {
    config
        .advertise
        .clone()
        .unwrap_or_else(|| config.bind.clone())
}

impl crate::Db {
    /// Recovers a survivor of a cluster that lost its quorum, on stores of the caller's choosing
    /// (what `StartMode::Recover` does on a data directory): the survivor's stores `old`, of
    /// node `old.0`, are read, never changed; the new one-node cluster of node `new.0` is
    /// written into the empty stores `new`. It keeps every entry the survivor had applied or
    /// held in its log, under a higher term and a new cluster id, with this node (at
    /// `config.advertise`, else `config.bind`) its only voter. Unless `config.force_recover`,
    /// the old cluster's other voters are asked first, and the recovery is refused if they
    /// still make a quorum.
    ///
    /// Returns `true` when the new stores were written: start the node on them
    /// ([`Db::start_with_storage`] with id `new.0`, `StartMode::Resume`). `false`: the survivor
    /// is already its cluster's only voter, nothing was written; start it on its old stores.
    /// The simulator recovers its nodes this way.
    pub async fn recover_storage<L, S, NL, NS>(
        config: &Config,
        old: (NodeId, &L, &S),
        new: (NodeId, &NL, &NS),
    ) -> Result<bool, StartError>
    where
        L: LogStore,
        S: StateMachineStore,
        NL: LogStore,
        NS: StateMachineStore,
    {
        let tls = config
            .tls
            .as_ref()
            .map(crate::start::load_tls)
            .transpose()?;
        let transport = PeerTransport::new(tls.as_ref());
        let Some(survivor) = survey(config, &transport, old).await? else {
            return Ok(false);
        };
        build(config, &survivor, old.2, new, &recovered_address(config))?;
        tracing::info!(
            old_id = old.0,
            new_id = new.0,
            last_index = survivor.last.index,
            "recovered into a new one-node cluster"
        );
        Ok(true)
    }
}

/// Recovers the node in `config.data_dir` into a new one-node cluster (see the module
/// documentation). Returns the new node id, or `None` when the node is its cluster's only voter
/// already (there is nothing to recover; it starts as it is).
pub(crate) async fn recover(
    config: &Config,
    options: LmdbOptions,
    transport: &PeerTransport,
) -> Result<Option<NodeId>, StartError> {
    let dir = &config.data_dir;
    finish_swap(dir)?;
    if !dir.join("lmdb").exists() {
        return Err(failed(format!(
            "{} holds no node to recover",
            dir.display()
        )));
    }
    let old = crate::start::open_when_released(dir, options.clone()).await?;
    let old_id = old.node_id(|| 0)?;
    let (old_log, old_machine) = old.into_parts();
    let Some(survivor) = survey(config, transport, (old_id, &old_log, &old_machine)).await? else {
        return Ok(None);
    };
    let staged = dir.join(RECOVERING);
    let fresh = crate::start::open_when_released(&staged, options).await?;
    let new_id = fresh.node_id(crate::start::random_node_id)?;
    let (new_log, new_machine) = fresh.into_parts();
    build(
        config,
        &survivor,
        &old_machine,
        (new_id, &new_log, &new_machine),
        &recovered_address(config),
    )?;
    drop((new_log, new_machine, old_log, old_machine));
    fs::File::create(staged.join("complete"))
        .and_then(|file| file.sync_all())
        .map_err(failed)?;
    wait_closed(dir).await?;
    finish_swap(dir)?;
    tracing::info!(
        old_id,
        new_id,
        last_index = survivor.last.index,
        "recovered into a new one-node cluster; the old data is kept beside it (*.before-recover-N)"
    );
    Ok(Some(new_id))
}

/// Waits until the stores opened here are closed (their background writers let go of them
/// a moment after they are dropped).
async fn wait_closed(dir: &Path) -> Result<(), StartError> {
    for path in [dir.to_path_buf(), dir.join(RECOVERING)] {
        let probe = crate::start::open_when_released(&path, LmdbOptions::default()).await?;
        drop(probe);
    }
    Ok(())
}

/// Writes the recovered state into `machine`: the old key space, the old log's tail applied on
/// top, and a membership of node `id` alone, as applied at `last`.
fn rebuild<S: StateMachineStore>(
    old: &impl StateRead,
    tail: &[dbadger_core::raft_types::LogEntry],
    machine: &S,
    config: &Config,
    last: LogId,
    id: NodeId,
    addr: &str,
) -> Result<(), StartError> {
    let mut txn = machine.write()?;
    let mut failure = None;
    old.scan(
        Bound::Unbounded,
        Bound::Unbounded,
        &mut |key, value, revision| match txn.put(key, value, revision) {
            Ok(()) => ControlFlow::Continue(()),
            Err(error) => {
                failure = Some(error);
                ControlFlow::Break(())
            }
        },
    )?;
    if let Some(error) = failure {
        return Err(error.into());
    }
    for entry in tail {
        if let EntryPayload::Normal(command) = &entry.payload {
            rules::apply(command, entry.log_id.index, &mut txn, &config.limits)?;
        }
    }
    let membership = Membership::new(
        vec![BTreeSet::from([id])],
        BTreeMap::from([(
            id,
            NodeAddress {
                addr: addr.to_owned(),
            },
        )]),
    )
    .map_err(failed)?;
    txn.set_applied_state(&AppliedState {
        last_applied: Some(last),
        membership: StoredMembership::new(Some(last), membership),
    })?;
    txn.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quorum_needs_a_majority_with_this_node() {
        // This node and one other of three: a quorum; this node alone: none.
        assert!(quorum_reachable(3, 2));
        assert!(!quorum_reachable(3, 1));
        assert!(!quorum_reachable(5, 2));
        assert!(quorum_reachable(5, 3));
        assert!(quorum_reachable(1, 1));
        assert!(!quorum_reachable(2, 1));
        assert!(quorum_reachable(2, 2));
        assert!(!quorum_reachable(0, 0));
    }
}
