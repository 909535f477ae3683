//! DBadger's configuration rules, each shown to accept and to refuse.

use super::*;

/// The defaults pass validation and translate into a valid openraft configuration.
#[test]
fn defaults_are_valid_and_map_to_openraft() {
    let config = Config::default();
    assert_eq!(config.validate(), Ok(()));
    let raft = config.raft_config().expect("defaults are valid");
    // A follower's silence before an election: the lease (max) plus [min, max) = [1 s, 1.5 s).
    assert_eq!(raft.election_timeout_min, 250);
    assert_eq!(raft.election_timeout_max, 750);
    assert_eq!(
        raft.heartbeat_interval, 50,
        "min(heartbeat/10, commit_timeout)"
    );
    assert_eq!(raft.max_in_snapshot_log_to_keep, 10_240);
    assert_eq!(raft.enable_pre_vote, Some(true));
}

/// DBadger refuses bootstrap with join, recover with join, and bootstrap with recover.
#[test]
fn start_flags_follow_dbadger_rules() {
    let peer = || vec!["10.0.0.1:7400".to_owned()];
    assert!(matches!(
        StartMode::from_flags(true, peer(), false),
        Err(ConfigError::Conflict {
            first: "bootstrap",
            second: "join"
        })
    ));
    assert!(matches!(
        StartMode::from_flags(false, peer(), true),
        Err(ConfigError::Conflict {
            first: "recover",
            second: "join"
        })
    ));
    assert!(matches!(
        StartMode::from_flags(true, vec![], true),
        Err(ConfigError::Conflict {
            first: "bootstrap",
            second: "recover"
        })
    ));
    assert_eq!(
        StartMode::from_flags(true, vec![], false),
        Ok(StartMode::Bootstrap)
    );
    assert_eq!(
        StartMode::from_flags(false, peer(), false),
        Ok(StartMode::Join(peer()))
    );
    assert_eq!(
        StartMode::from_flags(false, vec![], true),
        Ok(StartMode::Recover)
    );
    assert_eq!(
        StartMode::from_flags(false, vec![], false),
        Ok(StartMode::Resume)
    );
}

/// The election spread must leave room for two heartbeats below the heartbeat timeout.
#[test]
fn election_timeout_must_stay_below_heartbeat_timeout() {
    let mut config = Config {
        election_timeout: Duration::from_millis(899),
        ..Config::default()
    };
    assert_eq!(config.validate(), Ok(()));
    config.election_timeout = Duration::from_millis(900);
    assert!(matches!(
        config.validate(),
        Err(ConfigError::OutOfRange {
            option: "election_timeout",
            ..
        })
    ));
}

/// openraft starts an election after its lease plus a timeout drawn from [min, max): that
/// silence must span exactly [heartbeat_timeout, heartbeat_timeout + election_timeout).
#[test]
fn elections_start_after_the_heartbeat_timeout() {
    for (heartbeat, spread) in [(1000, 500), (150, 100), (300, 150), (1000, 5)] {
        let config = Config {
            heartbeat_timeout: Duration::from_millis(heartbeat),
            election_timeout: Duration::from_millis(spread),
            leader_lease_timeout: Duration::from_millis(heartbeat / 2),
            ..Config::default()
        };
        let raft = config.raft_config().expect("valid");
        let lease = raft.election_timeout_max;
        assert_eq!(
            lease + raft.election_timeout_min,
            heartbeat,
            "shortest silence"
        );
        assert!(
            (2 * lease).abs_diff(heartbeat + spread) <= 1,
            "longest silence {} for {heartbeat} + {spread}",
            2 * lease
        );
        assert!(config.longest_failover() >= Duration::from_millis(heartbeat + spread));
    }
}

/// The leader lease may equal but not exceed the heartbeat timeout.
#[test]
fn lease_must_not_exceed_heartbeat_timeout() {
    let mut config = Config {
        leader_lease_timeout: Duration::from_millis(1000),
        ..Config::default()
    };
    assert_eq!(config.validate(), Ok(()));
    config.leader_lease_timeout = Duration::from_millis(1001);
    assert!(matches!(
        config.validate(),
        Err(ConfigError::Ordering {
            smaller: "leader_lease_timeout",
            ..
        })
    ));
}

/// Timers below 5 ms (1 ms for commit and request timeouts) are refused.
#[test]
fn timers_have_a_floor() {
    let config = Config {
        heartbeat_timeout: Duration::from_millis(4),
        election_timeout: Duration::from_millis(4),
        leader_lease_timeout: Duration::from_millis(4),
        ..Config::default()
    };
    assert!(matches!(
        config.validate(),
        Err(ConfigError::OutOfRange {
            option: "heartbeat_timeout",
            ..
        })
    ));
    let config = Config {
        commit_timeout: Duration::ZERO,
        ..Config::default()
    };
    assert!(matches!(
        config.validate(),
        Err(ConfigError::OutOfRange {
            option: "commit_timeout",
            ..
        })
    ));
}

/// The peer and disk bounds are checked: timeouts of at least 1 ms, retry bounds in order, a
/// log queue of at least one write; the defaults sit inside them.
#[test]
fn peer_and_disk_bounds_are_checked() {
    let defaults = Config::default();
    assert_eq!(defaults.peer_connect_timeout, Duration::from_secs(1));
    assert!(defaults.peer_retry_min <= defaults.peer_retry_max);
    let option_of = |config: Config| match config.validate() {
        Err(ConfigError::OutOfRange { option, .. }) => Some(option),
        Err(ConfigError::Ordering { smaller, .. }) => Some(smaller),
        _ => None,
    };
    let cases = [
        (
            Config {
                peer_connect_timeout: Duration::ZERO,
                ..Config::default()
            },
            "peer_connect_timeout",
        ),
        (
            Config {
                peer_retry_min: Duration::ZERO,
                ..Config::default()
            },
            "peer_retry_min",
        ),
        (
            Config {
                peer_retry_min: Duration::from_secs(2),
                ..Config::default()
            },
            "peer_retry_min",
        ),
        (
            Config {
                disk_write_timeout: Duration::ZERO,
                ..Config::default()
            },
            "disk_write_timeout",
        ),
        (
            Config {
                max_queued_log_writes: 0,
                ..Config::default()
            },
            "max_queued_log_writes",
        ),
    ];
    for (config, option) in cases {
        assert_eq!(option_of(config), Some(option));
    }
    let edge = Config {
        peer_retry_min: Duration::from_secs(1),
        max_queued_log_writes: 1,
        disk_write_timeout: Duration::from_millis(1),
        ..Config::default()
    };
    assert_eq!(edge.validate(), Ok(()));
}

/// Recovering an in-memory node is refused: there is nothing to recover.
#[test]
fn recover_needs_a_disk() {
    let config = Config {
        in_memory: true,
        start: StartMode::Recover,
        ..Config::default()
    };
    assert_eq!(
        config.validate(),
        Err(ConfigError::Conflict {
            first: "recover",
            second: "in_memory"
        })
    );
}

/// A node bound on every interface must say where it is reached: other nodes cannot be told
/// to dial 0.0.0.0.
#[test]
fn binding_every_interface_needs_an_advertised_address() {
    for bind in ["0.0.0.0:7400", "[::]:7400"] {
        let mut config = Config {
            bind: bind.to_owned(),
            ..Config::default()
        };
        assert!(
            matches!(config.validate(), Err(ConfigError::Requires { .. })),
            "{bind}"
        );
        config.advertise = Some("10.0.0.5:7400".to_owned());
        assert_eq!(config.validate(), Ok(()), "{bind}");
    }
}

/// Addresses must be host:port; bracketed IPv6 hosts are accepted.
#[test]
fn addresses_must_be_host_and_port() {
    for good in ["127.0.0.1:7400", "node-1.example:1", "[::1]:7400"] {
        let config = Config {
            bind: good.to_owned(),
            ..Config::default()
        };
        assert_eq!(config.validate(), Ok(()), "{good}");
    }
    for bad in ["127.0.0.1", ":7400", "host:port", "::1:7400", "host:70000"] {
        let config = Config {
            bind: bad.to_owned(),
            ..Config::default()
        };
        assert!(config.validate().is_err(), "{bad} accepted");
    }
    let config = Config {
        start: StartMode::Join(vec![]),
        ..Config::default()
    };
    assert!(config.validate().is_err(), "empty join list accepted");
}

/// Zero-sized limits and a value limit above the request limit are refused.
#[test]
fn sizes_are_checked() {
    let mut config = Config::default();
    config.limits.max_batch_operations = 0;
    assert!(config.validate().is_err());
    let mut config = Config::default();
    config.limits.max_value_bytes = config.limits.max_request_bytes + 1;
    assert!(config.validate().is_err());
    let config = Config {
        max_storage_bytes: 1000,
        ..Config::default()
    };
    assert!(config.validate().is_err());
}

/// The response limit must hold the largest entry the value limit allows: the boundary passes,
/// one byte less is refused.
#[test]
fn the_response_limit_holds_the_largest_entry() {
    let mut config = Config::default();
    config.limits.max_value_bytes = 1000;
    let largest = crate::answer_size::key_value_bytes(crate::MAX_KEY_BYTES, 1000, u64::MAX)
        + crate::answer_size::ANSWER_OVERHEAD_BYTES;
    config.limits.max_response_bytes = largest;
    assert_eq!(config.validate(), Ok(()));
    config.limits.max_response_bytes = largest - 1;
    assert!(matches!(
        config.validate(),
        Err(ConfigError::OutOfRange {
            option: "limits.max_response_bytes",
            ..
        })
    ));
}
