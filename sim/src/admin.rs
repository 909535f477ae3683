//! Cluster administration as an operator does it: the Cluster gRPC service of any member.

use dbadger_proto::v1;
use dbadger_proto::v1::cluster_client::ClusterClient;

use crate::client::CLIENT_TIMEOUT;

/// Asks the member at `via` to remove node `id` from the cluster.
pub async fn remove_peer(via: &str, id: u64) -> Result<(), String> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{via}"))
        .map_err(|error| error.to_string())?
        .connect_timeout(CLIENT_TIMEOUT)
        .timeout(CLIENT_TIMEOUT);
    let channel = endpoint
        .connect()
        .await
        .map_err(|error| error.to_string())?;
    let mut request = tonic::Request::new(v1::RemovePeerRequest { id });
    request.set_timeout(CLIENT_TIMEOUT);
    ClusterClient::new(channel)
        .remove_peer(request)
        .await
        .map(|_| ())
        .map_err(|status| status.message().to_owned())
}
