//! Cluster administration as an operator does it: the Cluster gRPC service of any member.

use std::time::Duration;

use dbadger_core::raft_types::SnapshotMeta;
use dbadger_core::snapshot_format::SnapshotWriter;
use dbadger_proto::v1;
use dbadger_proto::v1::cluster_client::ClusterClient;
use tonic::transport::Channel;

use crate::client::{CLIENT_TIMEOUT, connect, failure};
use crate::history::Reply;

/// How long a restore may take: the node retries each of its steps for several leader
/// changes before it answers.
pub const RESTORE_TIMEOUT: Duration = Duration::from_secs(30);

/// The upload's piece size: small, so that even the workload's little files take a few
/// messages.
const UPLOAD_PIECE_BYTES: usize = 64;

/// Asks the member at `via` to remove node `id` from the cluster.
pub async fn remove_peer(via: &str, id: u64) -> Result<(), String> {
    let channel = connect(via, CLIENT_TIMEOUT).await?;
    let mut request = tonic::Request::new(v1::RemovePeerRequest { id });
    request.set_timeout(CLIENT_TIMEOUT);
    ClusterClient::new(channel)
        .remove_peer(request)
        .await
        .map(|_| ())
        .map_err(|status| status.message().to_owned())
}

/// A snapshot file holding exactly `pairs` (in ascending key order), as `dbadger snapshot
/// save` would write one.
fn snapshot_file(pairs: &[(Vec<u8>, Vec<u8>)]) -> std::io::Result<Vec<u8>> {
    let mut writer = SnapshotWriter::new(Vec::new(), &SnapshotMeta::default())?;
    for (key, value) in pairs {
        writer.record(key, value, 1)?;
    }
    writer.finish()
}

/// Uploads a snapshot of `pairs` through `channel` and restores it (`Cluster.Restore`).
pub async fn restore(channel: Channel, pairs: &[(Vec<u8>, Vec<u8>)]) -> Reply {
    let file = match snapshot_file(pairs) {
        Ok(file) => file,
        Err(error) => return Reply::Failed(format!("cannot write the snapshot: {error}")),
    };
    let pieces: Vec<v1::RestoreRequest> = file
        .chunks(UPLOAD_PIECE_BYTES)
        .map(|piece| v1::RestoreRequest {
            id: String::new(),
            data: piece.to_vec(),
        })
        .collect();
    let mut request = tonic::Request::new(futures_util::stream::iter(pieces));
    request.set_timeout(RESTORE_TIMEOUT);
    match ClusterClient::new(channel).restore(request).await {
        Ok(reply) => Reply::Written {
            revision: reply.into_inner().revision,
        },
        Err(status) => failure(&status, true),
    }
}
