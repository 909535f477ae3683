//! A workload client: draws operations on a small key space and sends them to nodes over the
//! simulated gRPC network, as any client program would.

use std::time::Duration;

use dbadger_core::Outcome;
use dbadger_grpc::status::from_status;
use dbadger_proto::v1;
use dbadger_proto::v1::kv_client::KvClient;
use madsim::rand::{Rng, thread_rng};
use tonic::Code;

use crate::history::{Expected, Preference, ReadEntries, Reply, Request};

/// The keys the workload uses: few, so that operations contend, under two prefixes, so that a
/// prefix operation covers some keys and not others.
pub const KEYS: [&[u8]; 5] = [b"a0", b"a1", b"b0", b"b1", b"b2"];

/// The prefixes of the workload's prefix reads and deletes (the empty one only for reads: a
/// delete of everything is `delete_all`).
const PREFIXES: [&[u8]; 4] = [b"", b"a", b"b", b"b1"];

/// How long a client waits for one reply.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(3);

/// One operation in this many is a restore.
const RESTORE_ONE_IN: u32 = 150;

/// What a client last saw of a key: its value and revision (`None`: absent).
pub type Known = Option<(Vec<u8>, u64)>;

fn key() -> Vec<u8> {
    KEYS[thread_rng().gen_range(0..KEYS.len())].to_vec()
}

/// `count` distinct workload keys, in random order.
fn distinct_keys(count: usize) -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = KEYS.iter().map(|key| key.to_vec()).collect();
    let mut rng = thread_rng();
    for index in 0..keys.len() {
        let other = rng.gen_range(index..keys.len());
        keys.swap(index, other);
    }
    keys.truncate(count);
    keys
}

/// A range bound: a workload key, or unbounded one time in four.
fn bound() -> Option<Vec<u8>> {
    thread_rng().gen_ratio(3, 4).then(key)
}

fn preference() -> Preference {
    if thread_rng().gen_bool(0.5) {
        Preference::Leader
    } else {
        Preference::Local
    }
}

fn restore(client: u64, seq: u64) -> Request {
    // A snapshot of a random part of the key space, each value unique in the run.
    let pairs = KEYS
        .iter()
        .enumerate()
        .filter(|_| thread_rng().gen_bool(0.6))
        .map(|(index, key)| {
            (
                key.to_vec(),
                format!("c{client}-{seq}r{index}").into_bytes(),
            )
        })
        .collect();
    Request::Restore { pairs }
}

/// A compare-and-set on a random key: expecting the value or the revision the client last saw
/// (or absence), storing a fresh value or, one time in five, deleting the key.
fn compare_and_set(value: Vec<u8>, known: &[Known]) -> Request {
    let mut rng = thread_rng();
    let index = rng.gen_range(0..KEYS.len());
    let seen = known.get(index).cloned().flatten();
    let expected = match (rng.gen_range(0..10), seen) {
        (0..=4, Some((value, _))) => Expected::Value(value),
        (5..=7, Some((_, revision))) => Expected::Revision(revision),
        _ => Expected::Absent,
    };
    Request::CompareAndSet {
        key: KEYS[index].to_vec(),
        expected,
        new: rng.gen_ratio(4, 5).then_some(value),
    }
}

/// Draws the next operation of `client`; `seq` makes written values unique in the run, and
/// `known` is what the client last saw of each key (for compare-and-set).
pub fn draw(client: u64, seq: u64, known: &[Known]) -> Request {
    let value = || format!("c{client}-{seq}").into_bytes();
    let mut rng = thread_rng();
    if rng.gen_ratio(1, RESTORE_ONE_IN) {
        return restore(client, seq);
    }
    let prefix = || PREFIXES[thread_rng().gen_range(0..PREFIXES.len())].to_vec();
    match rng.gen_range(0..100) {
        0..=19 => Request::Get {
            key: key(),
            preference: preference(),
        },
        20..=24 => Request::GetMany {
            keys: distinct_keys(rng.gen_range(2..=3)),
            preference: preference(),
        },
        25..=28 => Request::GetPrefix {
            prefix: prefix(),
            preference: preference(),
        },
        29..=32 => Request::GetRange {
            min: bound(),
            max: bound(),
            preference: preference(),
        },
        33..=52 => Request::Set {
            key: key(),
            value: value(),
        },
        53..=56 => Request::SetMany {
            pairs: distinct_keys(2)
                .into_iter()
                .zip(["a", "b"])
                .map(|(key, tag)| (key, format!("c{client}-{seq}{tag}").into_bytes()))
                .collect(),
        },
        57..=64 => Request::Delete { key: key() },
        65..=67 => Request::DeleteMany {
            keys: distinct_keys(rng.gen_range(1..=3)),
        },
        68..=69 => Request::DeletePrefix {
            prefix: PREFIXES[rng.gen_range(1..PREFIXES.len())].to_vec(),
        },
        70..=72 => Request::DeleteRange {
            min: bound(),
            max: bound(),
        },
        73 => Request::DeleteAll,
        _ => compare_and_set(value(), known),
    }
}

fn wire_preference(preference: Preference) -> i32 {
    match preference {
        Preference::Leader => v1::ReadPreference::Leader as i32,
        Preference::Local => v1::ReadPreference::Local as i32,
    }
}

fn with_timeout<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(CLIENT_TIMEOUT);
    request
}

/// Classifies a failed call by what the node said became of it: a write reported "not
/// applied" is recorded as failed, and the checkers then hold the node to it (a failed write
/// must never be seen applied); one of unknown outcome may or may not have happened. A read
/// changed nothing whatever the answer.
pub(crate) fn failure(status: &tonic::Status, is_write: bool) -> Reply {
    let error = from_status(status);
    if !is_write || error.outcome() == Outcome::NotApplied {
        Reply::Failed(error.to_string())
    } else {
        Reply::Unknown(error.to_string())
    }
}

fn entries(found: Vec<v1::KeyValue>) -> ReadEntries {
    found
        .into_iter()
        .map(|entry| (entry.key, Some((entry.value, entry.revision))))
        .collect()
}

fn written(revision: u64) -> Reply {
    Reply::Written { revision }
}

/// A range or prefix answer; one cut short (never expected for the workload's few keys) is
/// recorded as a failed read.
fn range_reply(reply: tonic::Response<v1::RangeResponse>) -> Reply {
    let reply = reply.into_inner();
    if reply.more {
        Reply::Failed("range answer cut short".to_owned())
    } else {
        Reply::Read(entries(reply.entries))
    }
}

/// A channel to the node at `addr`, whose calls time out after `timeout`.
pub(crate) async fn connect(
    addr: &str,
    timeout: Duration,
) -> Result<tonic::transport::Channel, String> {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|error| format!("bad address {addr}: {error}"))?
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect()
        .await
        .map_err(|error| format!("connect to {addr}: {error}"))
}

/// Sends `request` to the node at `addr` and waits for the reply (at most [`CLIENT_TIMEOUT`],
/// or [`crate::admin::RESTORE_TIMEOUT`] for a restore).
pub async fn send(addr: &str, request: &Request) -> Reply {
    let is_write = request.is_write();
    let timeout = match request {
        Request::Restore { .. } => crate::admin::RESTORE_TIMEOUT,
        _ => CLIENT_TIMEOUT,
    };
    let channel = match connect(addr, timeout).await {
        Ok(channel) => channel,
        // Nothing was sent.
        Err(error) => return Reply::Failed(error),
    };
    let mut client = KvClient::new(channel.clone());
    let outcome = match request.clone() {
        Request::Get { key, preference } => {
            let asked = key.clone();
            let message = v1::GetRequest {
                key,
                read_preference: wire_preference(preference),
            };
            match client.get(with_timeout(message)).await {
                Ok(reply) => Ok(Reply::Read(match reply.into_inner().entry {
                    Some(entry) => entries(vec![entry]),
                    None => vec![(asked, None)],
                })),
                Err(status) if status.code() == Code::NotFound => {
                    Ok(Reply::Read(vec![(asked, None)]))
                }
                Err(status) => Err(status),
            }
        }
        Request::GetMany { keys, preference } => {
            let message = v1::GetManyRequest {
                keys,
                read_preference: wire_preference(preference),
            };
            client.get_many(with_timeout(message)).await.map(|reply| {
                Reply::Read(
                    reply
                        .into_inner()
                        .entries
                        .into_iter()
                        .map(|lookup| {
                            let found = lookup.found.then_some((lookup.value, lookup.revision));
                            (lookup.key, found)
                        })
                        .collect(),
                )
            })
        }
        Request::GetPrefix { prefix, preference } => {
            let message = v1::GetPrefixRequest {
                prefix,
                read_preference: wire_preference(preference),
            };
            client
                .get_prefix(with_timeout(message))
                .await
                .map(range_reply)
        }
        Request::GetRange {
            min,
            max,
            preference,
        } => {
            let message = v1::GetRangeRequest {
                min,
                max,
                count: 0,
                read_preference: wire_preference(preference),
            };
            client
                .get_range(with_timeout(message))
                .await
                .map(range_reply)
        }
        Request::Set { key, value } => client
            .set(with_timeout(v1::SetRequest { key, value }))
            .await
            .map(|reply| written(reply.into_inner().revision)),
        Request::SetMany { pairs } => {
            let (keys, values) = pairs.into_iter().unzip();
            client
                .set_many(with_timeout(v1::SetManyRequest { keys, values }))
                .await
                .map(|reply| written(reply.into_inner().revision))
        }
        Request::Delete { key } => client
            .delete(with_timeout(v1::DeleteRequest { key }))
            .await
            .map(|reply| written(reply.into_inner().revision)),
        Request::DeleteMany { keys } => client
            .delete_many(with_timeout(v1::DeleteManyRequest { keys }))
            .await
            .map(|reply| written(reply.into_inner().revision)),
        Request::DeletePrefix { prefix } => client
            .delete_prefix(with_timeout(v1::DeletePrefixRequest { prefix }))
            .await
            .map(|reply| written(reply.into_inner().revision)),
        Request::DeleteRange { min, max } => client
            .delete_range(with_timeout(v1::DeleteRangeRequest { min, max }))
            .await
            .map(|reply| written(reply.into_inner().revision)),
        Request::DeleteAll => client
            .delete_all(with_timeout(v1::DeleteAllRequest {}))
            .await
            .map(|reply| written(reply.into_inner().revision)),
        Request::CompareAndSet { key, expected, new } => {
            use v1::compare_and_set_request::{Expected as WireExpected, New};
            let expected = Some(match expected {
                Expected::Value(value) => WireExpected::ExpectedValue(value),
                Expected::Revision(revision) => WireExpected::ExpectedRevision(revision),
                Expected::Absent => WireExpected::ExpectedAbsent(v1::Absent {}),
            });
            let new = Some(match new {
                Some(value) => New::NewValue(value),
                None => New::Delete(v1::Absent {}),
            });
            let message = v1::CompareAndSetRequest { key, expected, new };
            client
                .compare_and_set(with_timeout(message))
                .await
                .map(|reply| {
                    let reply = reply.into_inner();
                    Reply::Swapped {
                        succeeded: reply.succeeded,
                        revision: reply.revision,
                        current: reply.current.map(|entry| (entry.value, entry.revision)),
                    }
                })
        }
        Request::Restore { pairs } => return crate::admin::restore(channel, &pairs).await,
    };
    outcome.unwrap_or_else(|status| failure(&status, is_write))
}
