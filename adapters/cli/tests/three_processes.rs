//! A cluster of three `dbadger node` processes (one bootstrapped, two joined), used from a
//! plain gRPC client: a write through one node is read linearizably through another, and the
//! Cluster service reports three voters.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

use dbadger_proto::v1;
use dbadger_proto::v1::cluster_client::ClusterClient;
use dbadger_proto::v1::kv_client::KvClient;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

/// A node process, stopped with SIGTERM when dropped.
struct NodeProcess {
    child: Child,
    addr: String,
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Starts `dbadger node` with `flags` and waits until it reports that it started.
fn spawn(dir: &std::path::Path, flags: &[&str]) -> NodeProcess {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_dbadger"))
        .args(["node", "--headless", "--bind", &addr, "--db"])
        .arg(dir)
        .args(flags)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dbadger");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let started = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|line| line.contains("node started"));
    assert!(started, "node at {addr} did not start");
    // Keep draining the log so the process never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    NodeProcess { child, addr }
}

#[test]
fn three_processes_form_a_cluster_usable_from_grpc() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().expect("dir")).collect();
    let first = spawn(dirs[0].path(), &["--bootstrap"]);
    let second = spawn(dirs[1].path(), &["--join", &first.addr]);
    let third = spawn(dirs[2].path(), &["--join", &second.addr]);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut writer = KvClient::connect(format!("http://{}", third.addr))
            .await
            .expect("connect");
        let written = writer
            .set(v1::SetRequest {
                key: b"hello".to_vec(),
                value: b"world".to_vec(),
            })
            .await
            .expect("set through the third node")
            .into_inner();
        let mut reader = KvClient::connect(format!("http://{}", second.addr))
            .await
            .expect("connect");
        let entry = reader
            .get(v1::GetRequest {
                key: b"hello".to_vec(),
                read_preference: v1::ReadPreference::Leader as i32,
            })
            .await
            .expect("linearizable get through the second node")
            .into_inner()
            .entry
            .expect("entry");
        assert_eq!(
            (entry.value, entry.revision),
            (b"world".to_vec(), written.revision)
        );
        let mut cluster = ClusterClient::connect(format!("http://{}", first.addr))
            .await
            .expect("connect");
        let status = cluster
            .status(v1::StatusRequest {})
            .await
            .expect("status")
            .into_inner();
        assert_eq!(
            status.members.iter().filter(|m| m.voter).count(),
            3,
            "{status:?}"
        );
    });
}
