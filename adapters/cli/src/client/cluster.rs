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
    /// Make a learner a voter.
    Promote {
        /// The learner's id.
        id: u64,
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
    /// Take a snapshot and write it to FILE.
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
            let status = cluster_status(&endpoints).await?;
            let member = status
                .members
                .iter()
                .find(|member| member.id == id)
                .ok_or_else(|| Failure {
                    exit: Exit::NotFound,
                    message: format!("node {id} is not a member of the cluster"),
                })?;
            add_peer(&endpoints, id, &member.addr, false).await?;
            output.print(&["OK".to_owned()], json!({ "id": id, "voter": true }));
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

/// Runs `snapshot`. The nodes answer `UNIMPLEMENTED` until on-demand snapshots and restore
/// land (the lifecycle work); the command says so instead of pretending.
pub(crate) async fn snapshot(args: SnapshotArgs, endpoints: Endpoints) -> Result<Exit, Failure> {
    let answer = match args.action {
        SnapshotAction::Save { .. } => endpoints
            .call(Effect::Read, |channel, within| async move {
                ClusterClient::new(channel)
                    .snapshot(request(v1::SnapshotRequest {}, within))
                    .await
            })
            .await
            .map(|_| ()),
        SnapshotAction::Restore { .. } => endpoints
            .call(Effect::Write, |channel, within| async move {
                ClusterClient::new(channel)
                    .restore(request(v1::RestoreRequest::default(), within))
                    .await
            })
            .await
            .map(|_| ()),
    };
    match answer {
        Ok(()) => Err(Failure::other(
            "this client does not know how to transfer snapshots yet",
        )),
        Err(failure) => Err(Failure {
            exit: failure.exit,
            message: format!(
                "snapshot save and restore are not available yet (they arrive with the \
                 cluster lifecycle work); the node answered: {}",
                failure.message
            ),
        }),
    }
}

/// Runs `recover`: recovery is a start mode of the survivor, not a request to a running
/// cluster.
pub(crate) fn recover() -> Result<Exit, Failure> {
    Err(Failure::usage(
        "recovery after losing a quorum is not available yet (it arrives with the cluster \
         lifecycle work, as `dbadger node --recover` on the survivor)",
    ))
}
