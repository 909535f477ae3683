//! etcd for the peer benchmark: three `etcd` member processes on loopback, and the few
//! messages of etcd's v3 gRPC API the harness sends (KV Put and Range, Maintenance Status),
//! declared here by their field numbers so that both systems go through the same tonic
//! client stack.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic_prost::ProstCodec;

use super::process::{ServerProcess, free_port};

/// `etcdserverpb.PutRequest` (the fields the benchmark sets).
#[derive(Clone, PartialEq, prost::Message)]
pub struct PutRequest {
    /// The key.
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// The value.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `etcdserverpb.PutResponse`: only its header.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PutResponse {
    /// Cluster, member, revision and term of the reply.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}

/// `etcdserverpb.RangeRequest` for one key.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RangeRequest {
    /// The key.
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// Served from the member's local state, without a quorum round (etcd's equivalent of
    /// dbadger's `Local` read preference).
    #[prost(bool, tag = "7")]
    pub serializable: bool,
}

/// `etcdserverpb.RangeResponse`: its header and pairs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RangeResponse {
    /// Cluster, member, revision and term of the reply.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The pairs found.
    #[prost(message, repeated, tag = "2")]
    pub kvs: Vec<KeyValue>,
}

/// `mvccpb.KeyValue`: the key and value (revisions are not read).
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValue {
    /// The key.
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// The value.
    #[prost(bytes = "vec", tag = "5")]
    pub value: Vec<u8>,
}

/// `etcdserverpb.ResponseHeader`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ResponseHeader {
    /// The cluster's id.
    #[prost(uint64, tag = "1")]
    pub cluster_id: u64,
    /// The id of the member that answered.
    #[prost(uint64, tag = "2")]
    pub member_id: u64,
}

/// `etcdserverpb.StatusRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusRequest {}

/// `etcdserverpb.StatusResponse`: who answered and who it thinks leads.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusResponse {
    /// Its header (the answering member's id).
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The leader's member id, 0 when none is known.
    #[prost(uint64, tag = "4")]
    pub leader: u64,
}

/// An etcd v3 client over one HTTP/2 connection (cheap to clone: clones share it).
#[derive(Clone)]
pub struct EtcdClient {
    grpc: tonic::client::Grpc<Channel>,
}

impl EtcdClient {
    /// A client on `channel`.
    pub fn new(channel: Channel) -> EtcdClient {
        EtcdClient {
            grpc: tonic::client::Grpc::new(channel),
        }
    }

    async fn unary<Request, Response>(
        &mut self,
        path: &'static str,
        request: Request,
    ) -> Result<Response, tonic::Status>
    where
        Request: prost::Message + Send + Sync + 'static,
        Response: prost::Message + Default + Send + Sync + 'static,
    {
        self.grpc
            .ready()
            .await
            .map_err(|error| tonic::Status::unavailable(error.to_string()))?;
        let response = self
            .grpc
            .unary(
                tonic::Request::new(request),
                PathAndQuery::from_static(path),
                ProstCodec::default(),
            )
            .await?;
        Ok(response.into_inner())
    }

    /// `KV.Put`.
    pub async fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<(), tonic::Status> {
        let _: PutResponse = self
            .unary("/etcdserverpb.KV/Put", PutRequest { key, value })
            .await?;
        Ok(())
    }

    /// `KV.Range` of one key, linearizable or serializable; the value if the key exists.
    pub async fn get(
        &mut self,
        key: Vec<u8>,
        serializable: bool,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        let response: RangeResponse = self
            .unary("/etcdserverpb.KV/Range", RangeRequest { key, serializable })
            .await?;
        Ok(response.kvs.into_iter().next().map(|pair| pair.value))
    }

    /// `Maintenance.Status`: this member's id and the leader's.
    pub async fn status(&mut self) -> Result<(u64, u64), tonic::Status> {
        let response: StatusResponse = self
            .unary("/etcdserverpb.Maintenance/Status", StatusRequest {})
            .await?;
        let member = response.header.map_or(0, |header| header.member_id);
        Ok((member, response.leader))
    }
}

/// Three etcd members on loopback with their data under one directory.
pub struct EtcdCluster {
    /// The member processes, in the order of [`EtcdCluster::endpoints`].
    pub members: Vec<ServerProcess>,
    /// Each member's client address, `127.0.0.1:port`.
    pub endpoints: Vec<String>,
}

impl EtcdCluster {
    /// Starts `size` members with etcd's default fsync and `--heartbeat-interval 100
    /// --election-timeout 1000`, data in `root/etcd-N`, and waits until they have a leader.
    pub async fn start(etcd: &Path, root: &Path, size: usize) -> Result<EtcdCluster, String> {
        let mut peers = Vec::new();
        let mut endpoints = Vec::new();
        for _ in 0..size {
            peers.push(format!("127.0.0.1:{}", free_port()?));
            endpoints.push(format!("127.0.0.1:{}", free_port()?));
        }
        let initial_cluster = peers
            .iter()
            .enumerate()
            .map(|(index, peer)| format!("etcd-{}=http://{peer}", index + 1))
            .collect::<Vec<_>>()
            .join(",");
        let mut members = Vec::new();
        for index in 0..size {
            let name = format!("etcd-{}", index + 1);
            let mut command = Command::new(etcd);
            command
                .arg("--name")
                .arg(&name)
                .arg("--data-dir")
                .arg(root.join(&name))
                .arg("--listen-peer-urls")
                .arg(format!("http://{}", peers[index]))
                .arg("--initial-advertise-peer-urls")
                .arg(format!("http://{}", peers[index]))
                .arg("--listen-client-urls")
                .arg(format!("http://{}", endpoints[index]))
                .arg("--advertise-client-urls")
                .arg(format!("http://{}", endpoints[index]))
                .arg("--initial-cluster")
                .arg(&initial_cluster)
                .args(["--initial-cluster-state", "new"])
                .args(["--initial-cluster-token", "dbadger-peer-bench"])
                .args(["--heartbeat-interval", "100", "--election-timeout", "1000"])
                .args(["--log-level", "warn"]);
            let log = root.join(format!("{name}.log"));
            members.push(ServerProcess::spawn(&name, command, &log)?);
        }
        let cluster = EtcdCluster { members, endpoints };
        cluster.leader(Duration::from_secs(30)).await?;
        Ok(cluster)
    }

    /// The index of the member that leads, asking every running member until one names a
    /// leader that answers as itself, for up to `limit`.
    pub async fn leader(&self, limit: Duration) -> Result<usize, String> {
        let give_up = Instant::now() + limit;
        loop {
            let mut ids = Vec::new();
            let mut leader = 0;
            for endpoint in &self.endpoints {
                let answer = async {
                    let channel = super::connect(endpoint).await?;
                    EtcdClient::new(channel)
                        .status()
                        .await
                        .map_err(|status| status.message().to_owned())
                };
                match tokio::time::timeout(Duration::from_secs(1), answer).await {
                    Ok(Ok((member, known_leader))) => {
                        ids.push(Some(member));
                        if known_leader != 0 {
                            leader = known_leader;
                        }
                    }
                    _ => ids.push(None),
                }
            }
            if let Some(index) = ids.iter().position(|id| leader != 0 && *id == Some(leader)) {
                return Ok(index);
            }
            if Instant::now() >= give_up {
                return Err(format!("etcd elected no leader within {limit:?}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
