//! A workload client: draws operations on a small key space and sends them to nodes over the
//! simulated gRPC network, as any client program would.

use std::time::Duration;

use dbadger_core::Outcome;
use dbadger_grpc::status::from_status;
use dbadger_proto::v1;
use dbadger_proto::v1::kv_client::KvClient;
use madsim::rand::{Rng, thread_rng};
use tonic::Code;

use crate::history::{Preference, ReadEntries, Reply, Request};

/// The keys the workload uses: few, so that operations contend.
pub const KEYS: [&[u8]; 5] = [b"k0", b"k1", b"k2", b"k3", b"k4"];

/// An upper bound past every workload key (range bounds are inclusive).
const PAST_LAST_KEY: &[u8] = b"k9";

/// How long a client waits for one reply.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(3);

/// One operation in this many is a restore.
const RESTORE_ONE_IN: u32 = 150;

fn key() -> Vec<u8> {
    KEYS[thread_rng().gen_range(0..KEYS.len())].to_vec()
}

fn preference() -> Preference {
    if thread_rng().gen_bool(0.5) {
        Preference::Leader
    } else {
        Preference::Local
    }
}

/// Draws the next operation of `client`; `seq` makes written values unique in the run, and
/// `known` is the last value the client saw for each key (for compare-and-set).
pub fn draw(client: u64, seq: u64, known: &[Option<Vec<u8>>]) -> Request {
    let value = || format!("c{client}-{seq}").into_bytes();
    let mut rng = thread_rng();
    if rng.gen_ratio(1, RESTORE_ONE_IN) {
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
        return Request::Restore { pairs };
    }
    match rng.gen_range(0..100) {
        0..=29 => Request::Get {
            key: key(),
            preference: preference(),
        },
        30..=34 => {
            let low = rng.gen_range(0..KEYS.len());
            Request::GetRange {
                min: KEYS[low].to_vec(),
                max: KEYS.get(low + 1).copied().unwrap_or(PAST_LAST_KEY).to_vec(),
                preference: preference(),
            }
        }
        35..=59 => Request::Set {
            key: key(),
            value: value(),
        },
        60..=64 => {
            let first = rng.gen_range(0..KEYS.len() - 1);
            Request::SetMany {
                pairs: vec![
                    (
                        KEYS[first].to_vec(),
                        format!("c{client}-{seq}a").into_bytes(),
                    ),
                    (
                        KEYS[first + 1].to_vec(),
                        format!("c{client}-{seq}b").into_bytes(),
                    ),
                ],
            }
        }
        65..=74 => Request::Delete { key: key() },
        75..=77 => {
            let low = rng.gen_range(0..KEYS.len());
            Request::DeleteRange {
                min: KEYS[low].to_vec(),
                max: KEYS.get(low + 1).copied().unwrap_or(PAST_LAST_KEY).to_vec(),
            }
        }
        _ => {
            let index = rng.gen_range(0..KEYS.len());
            let expected = if rng.gen_bool(0.8) {
                known.get(index).cloned().flatten()
            } else {
                None
            };
            Request::CompareAndSet {
                key: KEYS[index].to_vec(),
                expected,
                new: value(),
            }
        }
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
        Request::GetRange {
            min,
            max,
            preference,
        } => {
            let message = v1::GetRangeRequest {
                min: Some(min),
                max: Some(max),
                count: 0,
                read_preference: wire_preference(preference),
            };
            client.get_range(with_timeout(message)).await.map(|reply| {
                let reply = reply.into_inner();
                if reply.more {
                    Reply::Failed("range answer cut short".to_owned())
                } else {
                    Reply::Read(entries(reply.entries))
                }
            })
        }
        Request::Set { key, value } => client
            .set(with_timeout(v1::SetRequest { key, value }))
            .await
            .map(|_| Reply::Written),
        Request::SetMany { pairs } => {
            let (keys, values) = pairs.into_iter().unzip();
            client
                .set_many(with_timeout(v1::SetManyRequest { keys, values }))
                .await
                .map(|_| Reply::Written)
        }
        Request::Delete { key } => client
            .delete(with_timeout(v1::DeleteRequest { key }))
            .await
            .map(|_| Reply::Written),
        Request::DeleteRange { min, max } => client
            .delete_range(with_timeout(v1::DeleteRangeRequest {
                min: Some(min),
                max: Some(max),
            }))
            .await
            .map(|_| Reply::Written),
        Request::CompareAndSet { key, expected, new } => {
            let expected = Some(match expected {
                Some(value) => v1::compare_and_set_request::Expected::ExpectedValue(value),
                None => v1::compare_and_set_request::Expected::ExpectedAbsent(v1::Absent {}),
            });
            let message = v1::CompareAndSetRequest {
                key,
                expected,
                new: Some(v1::compare_and_set_request::New::NewValue(new)),
            };
            client
                .compare_and_set(with_timeout(message))
                .await
                .map(|reply| Reply::Swapped(reply.into_inner().succeeded))
        }
        Request::Restore { pairs } => return crate::admin::restore(channel, &pairs).await,
    };
    outcome.unwrap_or_else(|status| failure(&status, is_write))
}
