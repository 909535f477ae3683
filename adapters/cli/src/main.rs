//! The `dbadger` binary: runs a node (`dbadger node ...`) and talks to a cluster with client
//! commands in the style of etcdctl (`get`, `put`, `del`, `cas`, `status`, ...).
//!
//! Status: the node entry point lands with the cluster issue and the client commands after it.
//! Until then the binary explains that and exits with status 2, so a script cannot mistake it
//! for a running node.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "dbadger {}: the node and client commands are not built yet; \
         this release contains the storage core only (see README.md, Status)",
        env!("CARGO_PKG_VERSION")
    );
    ExitCode::from(2)
}
