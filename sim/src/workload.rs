//! The clients of a run: simulated hosts that draw operations, send them to random members
//! and record every one in the history; and the final Leader reads of every key.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use madsim::rand::{Rng, thread_rng};
use madsim::runtime::Handle;
use madsim::time::sleep;

use crate::client::{self, KEYS, Known};
use crate::cluster::{Cluster, Target};
use crate::history::{History, Preference, Record, Reply, Request};
use crate::scope;

fn since_start() -> u64 {
    u64::try_from(madsim::time::TimeHandle::current().elapsed().as_nanos()).unwrap_or(u64::MAX)
}

fn key_index(key: &[u8]) -> Option<usize> {
    KEYS.iter().position(|known| *known == key)
}

/// Remembers what this client last saw of each key: the expected value or revision of its next
/// compare-and-set.
fn remember(known: &mut [Known], request: &Request, reply: &Reply) {
    let mut saw = |key: &[u8], seen: Known| {
        if let Some(index) = key_index(key) {
            known[index] = seen;
        }
    };
    match reply {
        Reply::Read(found) => {
            // A prefix or range answer lists present keys only: the others in scope are absent.
            for key in scope::read_keys(request) {
                let entry = found.iter().find(|(read, _)| *read == key);
                saw(&key, entry.and_then(|(_, value)| value.clone()));
            }
        }
        Reply::Written { revision } => {
            for (key, value) in scope::writes(request) {
                saw(&key, value.map(|value| (value, *revision)));
            }
        }
        Reply::Swapped { current, .. } => {
            if let Request::CompareAndSet { key, .. } = request {
                saw(key, current.clone());
            }
        }
        Reply::Failed(_) | Reply::Unknown(_) => {}
    }
}

pub(crate) fn start_clients(
    clients: u64,
    cluster: &Cluster,
    history: &History,
    stop: &Arc<AtomicBool>,
) -> Vec<madsim::task::JoinHandle<()>> {
    let handle = Handle::current();
    (0..clients)
        .map(|client| {
            let host = handle
                .create_node()
                .name(format!("client-{client}"))
                .ip(IpAddr::V4(Ipv4Addr::new(10, 0, 1, client as u8 + 1)))
                .build();
            let history = history.clone();
            let stop = Arc::clone(stop);
            let directory = cluster.directory();
            host.spawn(async move {
                let mut known: Vec<Known> = vec![None; KEYS.len()];
                let mut seq = 0;
                while !stop.load(Ordering::SeqCst) {
                    seq += 1;
                    let request = client::draw(client, seq, &known);
                    let Some(target) = directory.pick() else {
                        sleep(Duration::from_millis(10)).await;
                        continue;
                    };
                    let invoke = since_start();
                    let process = target.process();
                    let reply = client::send(&target.addr, &request).await;
                    let complete = since_start();
                    remember(&mut known, &request, &reply);
                    history.push(Record {
                        client,
                        node: target.index,
                        process: answered_by(&target, process),
                        invoke,
                        complete,
                        request,
                        reply,
                    });
                    sleep(Duration::from_millis(thread_rng().gen_range(0..20))).await;
                }
            })
        })
        .collect()
}

/// The process of `target` that answered a call made while `process` ran: known only when
/// the node did not restart during the call (a reply sent before a crash can arrive after it).
fn answered_by(target: &Target, process: u64) -> Option<u64> {
    (target.process() == process).then_some(process)
}

/// Reads every key through the leader, retrying until one answer per key comes back.
pub(crate) async fn final_reads(cluster: &Cluster, history: &History) {
    let directory = cluster.directory();
    let reader = Handle::current()
        .create_node()
        .name("final-reader")
        .ip(IpAddr::V4(Ipv4Addr::new(10, 0, 2, 1)))
        .build();
    let history = history.clone();
    let task = reader.spawn(async move {
        for key in KEYS {
            for _ in 0..20 {
                let Some(target) = directory.pick() else {
                    break;
                };
                let request = Request::Get {
                    key: key.to_vec(),
                    preference: Preference::Leader,
                };
                let invoke = since_start();
                let process = target.process();
                let reply = client::send(&target.addr, &request).await;
                let answered = matches!(reply, Reply::Read(_));
                history.push(Record {
                    client: u64::MAX,
                    node: target.index,
                    process: answered_by(&target, process),
                    invoke,
                    complete: since_start(),
                    request,
                    reply,
                });
                if answered {
                    break;
                }
            }
        }
    });
    let _ = task.await;
}
