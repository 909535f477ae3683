//! The peer benchmark: three etcd members and three `dbadger node` processes on this
//! machine, data on the same disk, measured through one client harness, alternating the
//! systems per scenario. Run it with `scripts/bench-peer`; method and results are in
//! `docs/benchmarks.md`.

pub mod dbadger_nodes;
pub mod embedded;
pub mod etcd;
pub mod failover;
pub mod harness;
pub mod process;
pub mod report;

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

/// The two systems under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum System {
    /// etcd, Debian's `etcd-server` package.
    Etcd,
    /// dbadger, this repository's `dbadger` binary.
    Dbadger,
}

impl System {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            System::Etcd => "etcd",
            System::Dbadger => "dbadger",
        }
    }

    /// The order in which the two systems run scenario number `scenario`: etcd first in the
    /// even ones, dbadger first in the odd ones, so that neither always runs on a machine
    /// the other has just warmed (or dirtied).
    pub fn order(scenario: usize) -> [System; 2] {
        if scenario.is_multiple_of(2) {
            [System::Etcd, System::Dbadger]
        } else {
            [System::Dbadger, System::Etcd]
        }
    }
}

/// One HTTP/2 connection to `endpoint` (`host:port`), with Nagle off as both servers have it.
pub async fn connect(endpoint: &str) -> Result<Channel, String> {
    Endpoint::from_shared(format!("http://{endpoint}"))
        .map_err(|_| format!("{endpoint} is not an address"))?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(1))
        .connect()
        .await
        .map_err(|error| format!("cannot connect to {endpoint}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_system_runs_first_in_every_other_scenario() {
        assert_eq!(System::order(0), [System::Etcd, System::Dbadger]);
        assert_eq!(System::order(1), [System::Dbadger, System::Etcd]);
        let etcd_first = (0..7)
            .filter(|&s| System::order(s)[0] == System::Etcd)
            .count();
        assert_eq!(etcd_first, 4);
    }
}
