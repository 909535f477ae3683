//! dbadger for the peer benchmark: three `dbadger node` processes on loopback with LMDB on
//! disk and fsync on (the defaults), formed the way an operator forms a cluster: the first
//! bootstraps, the others join it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use dbadger_proto::v1::StatusRequest;
use dbadger_proto::v1::cluster_client::ClusterClient;

use super::process::{ServerProcess, free_port};

/// Three dbadger nodes with their data under one directory.
pub struct DbadgerCluster {
    /// The node processes, in the order of [`DbadgerCluster::endpoints`].
    pub members: Vec<ServerProcess>,
    /// Each node's address, `127.0.0.1:port`.
    pub endpoints: Vec<String>,
}

/// What one node says of itself: whether it leads and whether it is ready (has a leader and
/// has caught up with it).
async fn status_of(endpoint: &str) -> Result<(bool, bool), String> {
    let ask = async {
        let channel = super::connect(endpoint).await?;
        let status = ClusterClient::new(channel)
            .status(StatusRequest {})
            .await
            .map_err(|status| status.message().to_owned())?
            .into_inner();
        Ok::<_, String>((status.is_leader, status.ready))
    };
    tokio::time::timeout(Duration::from_secs(1), ask)
        .await
        .map_err(|_| format!("{endpoint} did not answer within 1 s"))?
}

/// Polls `endpoint` until it reports ready, for up to `limit`.
async fn await_ready(endpoint: &str, limit: Duration) -> Result<(), String> {
    let give_up = Instant::now() + limit;
    loop {
        if let Ok((_, true)) = status_of(endpoint).await {
            return Ok(());
        }
        if Instant::now() >= give_up {
            return Err(format!(
                "dbadger node {endpoint} was not ready within {limit:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl DbadgerCluster {
    /// Starts `size` nodes of the `dbadger` binary with data in `root/dbadger-N`, one after
    /// another, each ready before the next starts.
    pub async fn start(dbadger: &Path, root: &Path, size: usize) -> Result<DbadgerCluster, String> {
        let mut members = Vec::new();
        let mut endpoints: Vec<String> = Vec::new();
        for index in 0..size {
            let name = format!("dbadger-{}", index + 1);
            let endpoint = format!("127.0.0.1:{}", free_port()?);
            let mut command = Command::new(dbadger);
            command
                .args(["node", "--headless", "--bind", &endpoint, "--db"])
                .arg(root.join(&name));
            match endpoints.first() {
                None => command.arg("--bootstrap"),
                Some(first) => command.args(["--join", first]),
            };
            let log = root.join(format!("{name}.log"));
            members.push(ServerProcess::spawn(&name, command, &log)?);
            await_ready(&endpoint, Duration::from_secs(30)).await?;
            endpoints.push(endpoint);
        }
        Ok(DbadgerCluster { members, endpoints })
    }

    /// The index of the node that reports itself leader, for up to `limit`.
    pub async fn leader(&self, limit: Duration) -> Result<usize, String> {
        let give_up = Instant::now() + limit;
        loop {
            for (index, endpoint) in self.endpoints.iter().enumerate() {
                if let Ok((true, _)) = status_of(endpoint).await {
                    return Ok(index);
                }
            }
            if Instant::now() >= give_up {
                return Err(format!("dbadger elected no leader within {limit:?}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
