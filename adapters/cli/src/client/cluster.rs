//! `status`, `members`, `snapshot` and `recover`: the Cluster service from the command line.

use clap::{Args, Subcommand};
use dbadger_proto::v1::cluster_client::ClusterClient;
use dbadger_proto::v1::{self, StatusResponse};
use serde_json::json;

use super::endpoints::request;
use super::{ClientArgs, Effect, Endpoints, Exit, Failure, Output};

/// `status`: every endpoint's view of the cluster.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The flags every client command takes.
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

/// `members list | add ID ADDR [--learner] | remove ID | promote ID`.
#[derive(Debug, Args)]
pub(crate) struct MembersArgs {
    #[command(subcommand)]
    action: MembersAction,
    /// The flags every client command takes.
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

#[derive(Debug, Subcommand)]
enum MembersAction {
    /// List the members: id, address, voter or learner, the leader marked.
    List,
    /// Add a node (it must be running): as a learner, then, once caught up, as a voter.
    Add {
        /// The new node's id (dbadger status on it prints it).
        id: u64,
        /// The address the cluster reaches it at.
        addr: String,
        /// Keep it a learner (a non-voting member).
        #[arg(long)]
        learner: bool,
    },
    /// Remove a member.
    Remove {
        /// The member's id.
        id: u64,
    },
    /// Make a learner a voter, once it has caught up.
    Promote {
        /// The learner's id.
        id: u64,
    },
    /// Take a voter's vote away; it stays as a learner.
    Demote {
        /// The voter's id.
        id: u64,
    },
    /// Hand the leadership to another voter.
    MoveLeader {
        /// The voter to lead (default: the one whose log reaches furthest).
        id: Option<u64>,
    },
}

/// `snapshot save FILE | restore FILE`.
#[derive(Debug, Args)]
pub(crate) struct SnapshotArgs {
    #[command(subcommand)]
    action: SnapshotAction,
    /// The flags every client command takes.
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

#[derive(Debug, Subcommand)]
enum SnapshotAction {
    /// List the snapshots the first endpoint keeps, newest first.
    List,
    /// Take a snapshot on the first endpoint that answers and write it to FILE (verified).
    Save {
        /// Where to write the snapshot.
        file: std::path::PathBuf,
    },
    /// Replace the whole cluster's state with the snapshot in FILE.
    Restore {
        /// The snapshot file.
        file: std::path::PathBuf,
    },
}

/// `recover`: how to bring a cluster back from a single survivor.
#[derive(Debug, Args)]
pub(crate) struct RecoverArgs {
    /// The flags every client command takes.
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

fn status_object(addr: &str, status: &StatusResponse) -> serde_json::Value {
    let stats = status.stats.clone().unwrap_or_default();
    json!({
        "endpoint": addr,
        "id": status.id,
        "addr": status.addr,
        "leader_id": status.leader_id,
        "leader_addr": status.leader_addr,
        "is_leader": status.is_leader,
        "ready": status.ready,
        "state": stats.state,
        "term": stats.term,
        "last_log_index": stats.last_log_index,
        "commit_index": stats.commit_index,
        "applied_index": stats.applied_index,
        "snapshot_index": stats.snapshot_index,
        "members": status.members.len(),
    })
}

fn status_line(addr: &str, status: &StatusResponse) -> String {
    let stats = status.stats.clone().unwrap_or_default();
    format!(
        "{addr}  id {}  {}  term {}  applied {}  committed {}  leader {}  {}",
        status.id,
        stats.state,
        stats.term,
        stats.applied_index,
        stats.commit_index,
        if status.leader_id == 0 {
            "none".to_owned()
        } else {
            status.leader_id.to_string()
        },
        if status.ready { "ready" } else { "not ready" },
    )
}

async fn status_of(endpoints: &Endpoints, addr: &str) -> Result<StatusResponse, Failure> {
    let one = Endpoints::only(endpoints, addr);
    one.call(Effect::Read, |channel, within| async move {
        ClusterClient::new(channel)
            .status(request(v1::StatusRequest {}, within))
            .await
    })
    .await
    .map(tonic::Response::into_inner)
}

/// Runs `status`: asks every endpoint; exit 5 when some did not answer.
pub(crate) async fn status(endpoints: Endpoints, output: Output) -> Result<Exit, Failure> {
    let mut exit = Exit::Success;
    for addr in endpoints.addrs() {
        match status_of(&endpoints, addr).await {
            Ok(status) => output.print(&[status_line(addr, &status)], status_object(addr, &status)),
            Err(failure) => {
                eprintln!("dbadger: {}", failure.message);
                exit = Exit::Unavailable;
            }
        }
    }
    Ok(exit)
}

async fn cluster_status(endpoints: &Endpoints) -> Result<StatusResponse, Failure> {
    endpoints
        .call(Effect::Read, |channel, within| async move {
            ClusterClient::new(channel)
                .status(request(v1::StatusRequest {}, within))
                .await
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Runs `members`.
pub(crate) async fn members(
    args: MembersArgs,
    endpoints: Endpoints,
    output: Output,
) -> Result<Exit, Failure> {
    match args.action {
        MembersAction::List => {
            let status = cluster_status(&endpoints).await?;
            for member in &status.members {
                let role = if member.voter { "voter" } else { "learner" };
                let leader = member.id == status.leader_id;
                output.print(
                    &[format!(
                        "{}  {}  {role}{}",
                        member.id,
                        member.addr,
                        if leader { "  leader" } else { "" }
                    )],
                    json!({ "id": member.id, "addr": member.addr, "voter": member.voter, "leader": leader }),
                );
            }
            Ok(Exit::Success)
        }
        MembersAction::Add { id, addr, learner } => {
            add_peer(&endpoints, id, &addr, learner).await?;
            output.print(
                &["OK".to_owned()],
                json!({ "id": id, "addr": addr, "voter": !learner }),
            );
            Ok(Exit::Success)
        }
        MembersAction::Remove { id } => {
            endpoints
                .call(Effect::Write, |channel, within| async move {
                    ClusterClient::new(channel)
                        .remove_peer(request(v1::RemovePeerRequest { id }, within))
                        .await
                })
                .await?;
            output.print(&["OK".to_owned()], json!({ "id": id, "removed": true }));
            Ok(Exit::Success)
        }
        MembersAction::Promote { id } => {
            endpoints
                .call(Effect::Write, |channel, within| async move {
                    ClusterClient::new(channel)
                        .promote_peer(request(v1::PromotePeerRequest { id }, within))
                        .await
                })
                .await?;
            output.print(&["OK".to_owned()], json!({ "id": id, "voter": true }));
            Ok(Exit::Success)
        }
        MembersAction::Demote { id } => {
            endpoints
                .call(Effect::Write, |channel, within| async move {
                    ClusterClient::new(channel)
                        .demote_peer(request(v1::DemotePeerRequest { id }, within))
                        .await
                })
                .await?;
            output.print(&["OK".to_owned()], json!({ "id": id, "voter": false }));
            Ok(Exit::Success)
        }
        MembersAction::MoveLeader { id } => {
            let to = id.unwrap_or(0);
            endpoints
                .call(Effect::Write, |channel, within| async move {
                    ClusterClient::new(channel)
                        .transfer_leadership(request(v1::TransferLeadershipRequest { to }, within))
                        .await
                })
                .await?;
            let status = cluster_status(&endpoints).await?;
            output.print(
                &[format!("OK: node {} leads", status.leader_id)],
                json!({ "leader_id": status.leader_id }),
            );
            Ok(Exit::Success)
        }
    }
}

async fn add_peer(
    endpoints: &Endpoints,
    id: u64,
    addr: &str,
    learner: bool,
) -> Result<(), Failure> {
    endpoints
        .call(Effect::Write, |channel, within| {
            let message = v1::AddPeerRequest {
                id,
                addr: addr.to_owned(),
                learner_only: learner,
            };
            async move {
                ClusterClient::new(channel)
                    .add_peer(request(message, within))
                    .await
            }
        })
        .await
        .map(|_| ())
}

fn snapshot_line(snapshot: &v1::SnapshotInfo) -> String {
    format!(
        "{}  index {}  term {}  {} bytes",
        snapshot.id, snapshot.index, snapshot.term, snapshot.size_bytes
    )
}

fn snapshot_object(snapshot: &v1::SnapshotInfo) -> serde_json::Value {
    json!({
        "id": snapshot.id,
        "index": snapshot.index,
        "term": snapshot.term,
        "size_bytes": snapshot.size_bytes,
    })
}

/// Takes a snapshot on the node behind `channel` and streams it into `partial`.
async fn save_from(
    channel: tonic::transport::Channel,
    within: std::time::Duration,
    partial: &std::path::Path,
) -> Result<v1::SnapshotInfo, tonic::Status> {
    use std::io::Write;
    let local = |error: std::io::Error| {
        tonic::Status::aborted(format!("cannot write {}: {error}", partial.display()))
    };
    let mut client = ClusterClient::new(channel);
    let taken = client
        .snapshot(request(v1::SnapshotRequest {}, within))
        .await?
        .into_inner();
    let mut pieces = client
        .download_snapshot(request(
            v1::DownloadSnapshotRequest { id: taken.id },
            within,
        ))
        .await?
        .into_inner();
    let mut file = std::fs::File::create(partial).map_err(local)?;
    let mut info = taken.snapshot;
    while let Some(piece) = pieces.message().await? {
        if let Some(described) = piece.snapshot {
            info = Some(described);
        }
        file.write_all(&piece.data).map_err(local)?;
    }
    file.sync_all().map_err(local)?;
    info.ok_or_else(|| tonic::Status::internal("the node did not describe the snapshot"))
}

/// `snapshot save FILE`: take, stream, verify, then rename into place.
async fn save(endpoints: &Endpoints, file: &std::path::Path) -> Result<v1::SnapshotInfo, Failure> {
    let mut partial_name = file.file_name().unwrap_or_default().to_os_string();
    partial_name.push(".part");
    let partial = file.with_file_name(partial_name);
    let saved = endpoints
        .call(Effect::Read, |channel, within| {
            let partial = partial.clone();
            async move { save_from(channel, within, &partial).await }
        })
        .await;
    let checked = saved.and_then(|info| {
        let opened = std::fs::File::open(&partial).map_err(|error| {
            Failure::other(format!("cannot read back {}: {error}", partial.display()))
        })?;
        dbadger_core::snapshot_format::verify(std::io::BufReader::new(opened)).map_err(
            |error| Failure::other(format!("the snapshot received is damaged: {error}")),
        )?;
        std::fs::rename(&partial, file).map_err(|error| {
            Failure::other(format!(
                "cannot move the snapshot to {}: {error}",
                file.display()
            ))
        })?;
        Ok(info)
    });
    if checked.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    checked
}

/// The size of the pieces a snapshot file is uploaded in.
const UPLOAD_PIECE_BYTES: usize = 1 << 20;

/// Runs `snapshot`: `list`, `save FILE` and `restore FILE`.
pub(crate) async fn snapshot(
    args: SnapshotArgs,
    endpoints: Endpoints,
    output: Output,
) -> Result<Exit, Failure> {
    match args.action {
        SnapshotAction::List => {
            let first = endpoints.only(&endpoints.addrs()[0]);
            let listed = first
                .call(Effect::Read, |channel, within| async move {
                    ClusterClient::new(channel)
                        .list_snapshots(request(v1::ListSnapshotsRequest {}, within))
                        .await
                })
                .await?
                .into_inner();
            for snapshot in &listed.snapshots {
                output.print(&[snapshot_line(snapshot)], snapshot_object(snapshot));
            }
            Ok(Exit::Success)
        }
        SnapshotAction::Save { file } => {
            let info = save(&endpoints, &file).await?;
            output.print(
                &[format!(
                    "saved {} to {}",
                    snapshot_line(&info),
                    file.display()
                )],
                snapshot_object(&info),
            );
            Ok(Exit::Success)
        }
        SnapshotAction::Restore { file } => {
            let bytes = std::fs::read(&file).map_err(|error| {
                Failure::usage(format!("cannot read {}: {error}", file.display()))
            })?;
            dbadger_core::snapshot_format::verify(bytes.as_slice()).map_err(|error| {
                Failure::usage(format!(
                    "{} is not a valid snapshot: {error}",
                    file.display()
                ))
            })?;
            let bytes = std::sync::Arc::new(bytes);
            let restored = endpoints
                .call(Effect::Write, |channel, within| {
                    let bytes = std::sync::Arc::clone(&bytes);
                    async move {
                        let pieces: Vec<v1::RestoreRequest> = bytes
                            .chunks(UPLOAD_PIECE_BYTES)
                            .map(|piece| v1::RestoreRequest {
                                id: String::new(),
                                data: piece.to_vec(),
                            })
                            .collect();
                        ClusterClient::new(channel)
                            .restore(request(futures_util::stream::iter(pieces), within))
                            .await
                    }
                })
                .await?
                .into_inner();
            output.print(
                &[format!(
                    "restored {} keys at revision {}",
                    restored.keys, restored.revision
                )],
                json!({ "revision": restored.revision, "keys": restored.keys }),
            );
            Ok(Exit::Success)
        }
    }
}

/// Runs `recover`: recovery is a start mode of the survivor, not a request to a running
/// cluster; the command says how.
pub(crate) fn recover() -> Result<Exit, Failure> {
    Err(Failure::usage(
        "recovery after losing a quorum is done on the survivor itself: stop it, then start it \
         with `dbadger node --db DIR --recover` (it refuses while a quorum of the old cluster \
         answers, unless --force); it becomes the leader of a new one-node cluster, and new \
         nodes join it with --join",
    ))
}
