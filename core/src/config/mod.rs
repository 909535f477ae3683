//! Node configuration: DBadger's options with DBadger's validation rules, and their translation
//! into openraft's configuration.
//!
//! Timing options are named after hashicorp/raft's, which DBadger users know; what each does
//! here is exactly what this table says:
//!
//! | option | meaning | openraft |
//! | --- | --- | --- |
//! | `heartbeat_timeout` | a follower that hears nothing from a leader this long starts an election (pre-vote first) | with `d = election_timeout`: `election_timeout_max = (heartbeat_timeout + d) / 2`, `election_timeout_min = heartbeat_timeout - election_timeout_max` |
//! | `election_timeout` | the span elections are randomised over: a follower starts one after a silence between `heartbeat_timeout` and `heartbeat_timeout + election_timeout`, and a candidate that has not won starts a new round after `(heartbeat_timeout - election_timeout) / 2` to `(heartbeat_timeout + election_timeout) / 2` | as above |
//! | `commit_timeout` | the longest a follower waits to learn a commit index when no writes flow | `heartbeat_interval = min(heartbeat_timeout / 10, commit_timeout)` |
//! | `leader_lease_timeout` | the lease a leader could serve reads under without a quorum round | validated only: dbadger serves linearizable reads with ReadIndex, never a lease (a lease is only as safe as the clock-drift bound) |
//! | `snapshot_threshold` | take a snapshot once this many entries were applied since the last | `SnapshotPolicy::LogsSinceLast` |
//! | `trailing_logs` | entries kept after a snapshot, so slow followers catch up from the log | `max_in_snapshot_log_to_keep` |
//! | `snapshot_interval` | the node driver's timer: this often (lengthened by up to a quarter, by node id, so that nodes do not snapshot together) a node takes a snapshot if it applied anything since its last one, so that a restart replays at most this much of the log | - |

use std::path::PathBuf;
use std::time::Duration;

use crate::error::ConfigError;
use crate::limits::Limits;

/// The PEM material of a TLS identity or trust anchor: inline bytes or a file to read at start.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum PemSource {
    /// PEM text held in memory.
    Bytes(Vec<u8>),
    /// A PEM file, read when the node starts.
    Path(PathBuf),
}

/// Mutual TLS for the node's one port: every peer, node or client, must present a certificate
/// signed by `ca`, and the node presents `cert`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TlsConfig {
    /// The cluster CA certificate(s) that client and server certificates must chain to.
    pub ca: PemSource,
    /// This node's certificate chain (used as server and as client certificate).
    pub cert: PemSource,
    /// This node's private key.
    pub key: PemSource,
}

/// How a node starts.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub enum StartMode {
    /// Resume from the data directory; a new, empty node waits to be added by a cluster member.
    #[default]
    Resume,
    /// Create a new one-node cluster (ignored if the data directory already holds one).
    Bootstrap,
    /// Ask a member of an existing cluster (any of these addresses) to add this node.
    Join(Vec<String>),
    /// Turn this node's data into a new one-node cluster after the rest of the old cluster was
    /// lost, keeping everything it had.
    Recover,
}

impl StartMode {
    /// Builds the start mode from DBadger-style flags, refusing the combinations DBadger refuses:
    /// bootstrap with join, recover with join, bootstrap with recover.
    pub fn from_flags(
        bootstrap: bool,
        join: Vec<String>,
        recover: bool,
    ) -> Result<StartMode, ConfigError> {
        match (bootstrap, join.is_empty(), recover) {
            (true, false, _) => Err(ConfigError::Conflict {
                first: "bootstrap",
                second: "join",
            }),
            (_, false, true) => Err(ConfigError::Conflict {
                first: "recover",
                second: "join",
            }),
            (true, true, true) => Err(ConfigError::Conflict {
                first: "bootstrap",
                second: "recover",
            }),
            (true, true, false) => Ok(StartMode::Bootstrap),
            (false, false, false) => Ok(StartMode::Join(join)),
            (false, true, true) => Ok(StartMode::Recover),
            (false, true, false) => Ok(StartMode::Resume),
        }
    }
}

/// Everything a node needs to start.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Config {
    /// The `host:port` the node listens on for Raft, client gRPC and `/metrics`.
    pub bind: String,
    /// The `host:port` other nodes and clients use to reach this node; `None` means `bind`.
    pub advertise: Option<String>,
    /// The data directory (LMDB environment and snapshots). Unused in memory mode.
    pub data_dir: PathBuf,
    /// Keep everything in memory: no files at all, nothing survives the process.
    pub in_memory: bool,
    /// Mutual TLS; `None` serves plaintext.
    pub tls: Option<TlsConfig>,
    /// Bootstrap, join, recover or resume.
    pub start: StartMode,
    /// With `StartMode::Recover`: recover even though enough voters of the old cluster answer
    /// to form a quorum with this node (they must then be stopped and wiped: they would form a
    /// second cluster). Default false.
    pub force_recover: bool,
    /// With `StartMode::Bootstrap` on a new data directory: the new cluster starts with the
    /// state of this snapshot file (one saved from any cluster), restored as its first write.
    /// Ignored once the node holds a cluster. Default none.
    pub restore_from: Option<PathBuf>,
    /// Remove this node from the cluster when it is stopped gracefully (`Db::close`; a leader
    /// hands its leadership over first). A node that left rejoins only as a new node (with
    /// `StartMode::Join`). Default true; turn it off for restarts that keep the membership.
    pub leave_on_stop: bool,
    /// See the module table. Default 1 s (hashicorp/raft's default).
    pub heartbeat_timeout: Duration,
    /// See the module table. Default 500 ms; must stay below `heartbeat_timeout` by at least
    /// two heartbeat intervals (`2 * min(heartbeat_timeout / 10, commit_timeout)`).
    pub election_timeout: Duration,
    /// See the module table. Default 500 ms; must not exceed `heartbeat_timeout`.
    pub leader_lease_timeout: Duration,
    /// See the module table. Default 50 ms.
    pub commit_timeout: Duration,
    /// See the module table. Default 120 s.
    pub snapshot_interval: Duration,
    /// See the module table. Default 8,192 entries.
    pub snapshot_threshold: u64,
    /// How many snapshot files to keep in the data directory. Default 2.
    pub snapshot_retain: usize,
    /// See the module table. Default 10,240 entries.
    pub trailing_logs: u64,
    /// The longest a snapshot transfer to one follower may take. Default 60 s.
    pub snapshot_transfer_timeout: Duration,
    /// The deadline of a call that does not bring its own. Default 5 s.
    pub request_timeout: Duration,
    /// The longest a connection attempt to a peer may take. Default 1 s.
    pub peer_connect_timeout: Duration,
    /// After a peer could not be reached, the wait before the next attempt; it doubles per
    /// failed attempt (with jitter) up to `peer_retry_max`. Default 25 ms.
    pub peer_retry_min: Duration,
    /// The longest wait between attempts to reach an unreachable peer: how soon a peer that
    /// comes back is noticed, at most. Default 1 s; at least `peer_retry_min`.
    pub peer_retry_max: Duration,
    /// The longest a durable write the Raft core waits for (a vote, a log truncation or
    /// purge) may take before the node gives up on its disk and stops with a fatal error,
    /// instead of hanging on a wedged `fsync`. Default 30 s.
    pub disk_write_timeout: Duration,
    /// The most log writes queued for the disk; beyond it the Raft core waits for room
    /// (back-pressure instead of unbounded memory). Default 4,096.
    pub max_queued_log_writes: usize,
    /// The most disk the store's data may use (the pages of the log and of the state machine
    /// together; the files may hold free pages beyond it). At this size writes fail with
    /// "storage full" while reads keep working. Default 64 GiB.
    pub max_storage_bytes: u64,
    /// Request and response limits.
    pub limits: Limits,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: "127.0.0.1:7400".to_owned(),
            advertise: None,
            data_dir: PathBuf::from("dbadger-data"),
            in_memory: false,
            tls: None,
            start: StartMode::Resume,
            leave_on_stop: true,
            heartbeat_timeout: Duration::from_millis(1000),
            election_timeout: Duration::from_millis(500),
            leader_lease_timeout: Duration::from_millis(500),
            commit_timeout: Duration::from_millis(50),
            snapshot_interval: Duration::from_secs(120),
            snapshot_threshold: 8192,
            snapshot_retain: 2,
            trailing_logs: 10_240,
            snapshot_transfer_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(5),
            peer_connect_timeout: Duration::from_secs(1),
            peer_retry_min: Duration::from_millis(25),
            peer_retry_max: Duration::from_secs(1),
            disk_write_timeout: Duration::from_secs(30),
            max_queued_log_writes: 4096,
            restore_from: None,
            force_recover: false,
            max_storage_bytes: 64 << 30,
            limits: Limits::default(),
        }
    }
}

/// Timers shorter than this cannot be honoured by any scheduler (hashicorp/raft's floor).
const MIN_TIMER: Duration = Duration::from_millis(5);
/// The smallest useful storage bound: LMDB needs some pages for its own metadata.
const MIN_STORAGE_BYTES: u64 = 1 << 20;

impl Config {
    /// The address a node advertises (records in the membership, and gives peers and
    /// clients) once its listener is bound to `bound`: `advertise` if set, otherwise the bound
    /// address (so that `bind` with port 0 advertises the port the system chose). `validate`
    /// refuses an unspecified `bind` address without `advertise`.
    pub fn advertised_address(&self, bound: core::net::SocketAddr) -> String {
        self.advertise.clone().unwrap_or_else(|| bound.to_string())
    }

    /// Checks every rule; the first broken one is reported.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_start()?;
        self.validate_timers()?;
        self.validate_sizes()?;
        check_address("bind", &self.bind)?;
        if let Some(advertise) = &self.advertise {
            check_address("advertise", advertise)?;
        } else if self
            .bind
            .parse::<core::net::SocketAddr>()
            .is_ok_and(|addr| addr.ip().is_unspecified())
        {
            // Other nodes would be told to reach this one at 0.0.0.0.
            return Err(ConfigError::Requires {
                option: "bind on every interface (0.0.0.0 or [::])",
                required: "advertise (the address other nodes and clients reach this node at)",
            });
        }
        Ok(())
    }

    fn validate_start(&self) -> Result<(), ConfigError> {
        if self.restore_from.is_some() && self.start != StartMode::Bootstrap {
            return Err(ConfigError::Requires {
                option: "restore_from",
                required: "bootstrap",
            });
        }
        match &self.start {
            StartMode::Join(addresses) => {
                if addresses.is_empty() {
                    return Err(ConfigError::OutOfRange {
                        option: "join",
                        value: "[]".to_owned(),
                        rule: "needs at least one member address",
                    });
                }
                addresses
                    .iter()
                    .try_for_each(|address| check_address("join", address))
            }
            StartMode::Recover if self.in_memory => Err(ConfigError::Conflict {
                first: "recover",
                second: "in_memory",
            }),
            StartMode::Resume | StartMode::Bootstrap | StartMode::Recover => Ok(()),
        }
    }

    fn validate_timers(&self) -> Result<(), ConfigError> {
        at_least("heartbeat_timeout", self.heartbeat_timeout, MIN_TIMER)?;
        at_least("election_timeout", self.election_timeout, MIN_TIMER)?;
        at_least("leader_lease_timeout", self.leader_lease_timeout, MIN_TIMER)?;
        at_least(
            "commit_timeout",
            self.commit_timeout,
            Duration::from_millis(1),
        )?;
        at_least("snapshot_interval", self.snapshot_interval, MIN_TIMER)?;
        at_least(
            "request_timeout",
            self.request_timeout,
            Duration::from_millis(1),
        )?;
        at_least(
            "snapshot_transfer_timeout",
            self.snapshot_transfer_timeout,
            MIN_TIMER,
        )?;
        at_least(
            "peer_connect_timeout",
            self.peer_connect_timeout,
            Duration::from_millis(1),
        )?;
        at_least(
            "peer_retry_min",
            self.peer_retry_min,
            Duration::from_millis(1),
        )?;
        at_least(
            "disk_write_timeout",
            self.disk_write_timeout,
            Duration::from_millis(1),
        )?;
        not_above(
            "peer_retry_min",
            self.peer_retry_min,
            "peer_retry_max",
            self.peer_retry_max,
        )?;
        let spread_limit = self
            .heartbeat_timeout
            .saturating_sub(self.heartbeat_interval() * 2);
        if self.election_timeout >= spread_limit {
            return Err(ConfigError::OutOfRange {
                option: "election_timeout",
                value: format!("{:?}", self.election_timeout),
                rule: "must be below heartbeat_timeout minus two heartbeat intervals",
            });
        }
        not_above(
            "leader_lease_timeout",
            self.leader_lease_timeout,
            "heartbeat_timeout",
            self.heartbeat_timeout,
        )
    }

    fn validate_sizes(&self) -> Result<(), ConfigError> {
        let limits = &self.limits;
        let positive = [
            ("snapshot_threshold", self.snapshot_threshold),
            ("snapshot_retain", self.snapshot_retain as u64),
            ("max_queued_log_writes", self.max_queued_log_writes as u64),
            ("limits.max_value_bytes", limits.max_value_bytes as u64),
            (
                "limits.max_batch_operations",
                limits.max_batch_operations as u64,
            ),
            ("limits.max_request_bytes", limits.max_request_bytes as u64),
            (
                "limits.max_response_bytes",
                limits.max_response_bytes as u64,
            ),
        ];
        for (option, value) in positive {
            if value == 0 {
                return Err(ConfigError::OutOfRange {
                    option,
                    value: "0".to_owned(),
                    rule: "must be at least 1",
                });
            }
        }
        if limits.max_value_bytes > limits.max_request_bytes {
            return Err(ConfigError::OutOfRange {
                option: "limits.max_value_bytes",
                value: limits.max_value_bytes.to_string(),
                rule: "must not exceed limits.max_request_bytes",
            });
        }
        // Any one stored entry must fit in an answer (a Get, a compare-and-set's current entry,
        // the first entry of a range), or the node could store what it cannot return.
        let largest_entry = crate::answer_size::key_value_bytes(
            crate::limits::MAX_KEY_BYTES,
            limits.max_value_bytes,
            u64::MAX,
        ) + crate::answer_size::ANSWER_OVERHEAD_BYTES;
        if limits.max_response_bytes < largest_entry {
            return Err(ConfigError::OutOfRange {
                option: "limits.max_response_bytes",
                value: limits.max_response_bytes.to_string(),
                rule: "must hold the largest entry (limits.max_value_bytes plus a key and framing)",
            });
        }
        if !self.in_memory && self.max_storage_bytes < MIN_STORAGE_BYTES {
            return Err(ConfigError::OutOfRange {
                option: "max_storage_bytes",
                value: self.max_storage_bytes.to_string(),
                rule: "must be at least 1 MiB",
            });
        }
        Ok(())
    }

    /// How often a leader sends heartbeats: `min(heartbeat_timeout / 10, commit_timeout)`.
    pub fn heartbeat_interval(&self) -> Duration {
        (self.heartbeat_timeout / 10)
            .min(self.commit_timeout)
            .max(Duration::from_millis(1))
    }

    /// The longest a leader change takes on a sound network: a follower's longest silence
    /// (`heartbeat_timeout + election_timeout`) and one candidate round. A node waits this
    /// long for a leader before it answers `UNAVAILABLE`, and a leader that has heard from no
    /// quorum for this long refuses writes.
    pub fn longest_failover(&self) -> Duration {
        let silence = self.heartbeat_timeout + self.election_timeout;
        silence + silence / 2
    }

    /// The openraft configuration these options stand for (see the module table).
    ///
    /// openraft starts an election once a follower has heard nothing for its leader lease
    /// (`election_timeout_max`) plus a timeout drawn from `[election_timeout_min,
    /// election_timeout_max)`; the two are chosen so that this silence falls between
    /// `heartbeat_timeout` and `heartbeat_timeout + election_timeout`.
    pub fn raft_config(&self) -> Result<openraft::Config, ConfigError> {
        self.validate()?;
        let heartbeat_timeout_ms = millis(self.heartbeat_timeout);
        let lease_ms = (heartbeat_timeout_ms + millis(self.election_timeout)) / 2;
        let heartbeat_interval_ms = millis(self.heartbeat_interval());
        let config = openraft::Config {
            cluster_name: "dbadger".to_owned(),
            election_timeout_min: heartbeat_timeout_ms - lease_ms,
            election_timeout_max: lease_ms,
            heartbeat_interval: heartbeat_interval_ms,
            install_snapshot_timeout: millis(self.snapshot_transfer_timeout),
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_threshold),
            max_in_snapshot_log_to_keep: self.trailing_logs,
            // Purging is one range delete per batch in every store; small batches keep the log
            // close to `trailing_logs` instead of lagging up to openraft's default of 256.
            purge_batch_size: 64,
            enable_pre_vote: Some(true),
            ..openraft::Config::default()
        };
        config.validate().map_err(|_| ConfigError::OutOfRange {
            option: "heartbeat_timeout",
            value: format!("{heartbeat_timeout_ms} ms"),
            rule: "gives openraft an invalid timing configuration",
        })
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn at_least(option: &'static str, value: Duration, minimum: Duration) -> Result<(), ConfigError> {
    if value < minimum {
        return Err(ConfigError::OutOfRange {
            option,
            value: format!("{value:?}"),
            rule: "is below the smallest usable timer",
        });
    }
    Ok(())
}

fn not_above(
    smaller: &'static str,
    smaller_value: Duration,
    larger: &'static str,
    larger_value: Duration,
) -> Result<(), ConfigError> {
    if smaller_value > larger_value {
        return Err(ConfigError::Ordering {
            smaller,
            smaller_ms: millis(smaller_value),
            larger,
            larger_ms: millis(larger_value),
        });
    }
    Ok(())
}

/// `host:port` with a non-empty host and a numeric port (IPv6 hosts in brackets).
fn check_address(option: &'static str, address: &str) -> Result<(), ConfigError> {
    let invalid = || ConfigError::OutOfRange {
        option,
        value: address.to_owned(),
        rule: "must be host:port",
    };
    let (host, port) = address.rsplit_once(':').ok_or_else(invalid)?;
    let host_ok =
        !host.is_empty() && (!host.contains(':') || (host.starts_with('[') && host.ends_with(']')));
    if !host_ok || port.parse::<u16>().is_err() {
        return Err(invalid());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
