//! The failover scenario: one client writes without pause, the leader is killed with
//! SIGKILL, and the time from the kill to the next acknowledged write is what a user of
//! either system waits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::harness::{KvTarget, Operation, VALUE_BYTES, key};
use super::process::ServerProcess;
use super::{System, connect};

/// How long one write may take before the client gives up on its member and tries the next.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// How long writes run before the kill, so that the cluster is in its steady state.
const WARM_UP: Duration = Duration::from_secs(2);
/// How long the cluster may take to acknowledge a write after the kill.
const LIMIT: Duration = Duration::from_secs(60);

/// A writer that aims at `endpoints[first]` and, on any error or timeout, moves on to the
/// next endpoint (so that a client of the dead leader reaches a survivor, which forwards to
/// the new leader), publishing when each acknowledged write was sent and when its answer
/// came.
async fn write_forever(
    system: System,
    endpoints: Vec<String>,
    first: usize,
    acknowledged: watch::Sender<(Instant, Instant)>,
    stop: Arc<AtomicBool>,
) {
    let value = vec![0x42u8; VALUE_BYTES];
    let mut index = first;
    let mut target: Option<KvTarget> = None;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if target.is_none() {
            match tokio::time::timeout(CALL_TIMEOUT, connect(&endpoints[index])).await {
                Ok(Ok(channel)) => target = Some(KvTarget::new(system, channel)),
                _ => {
                    index = (index + 1) % endpoints.len();
                    continue;
                }
            }
        }
        let Some(client) = target.as_mut() else {
            continue;
        };
        n += 1;
        let sent = Instant::now();
        let call = client.call(Operation::Put, key(n), &value);
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok(())) => {
                let _ = acknowledged.send((sent, Instant::now()));
            }
            _ => {
                target = None;
                index = (index + 1) % endpoints.len();
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Kills `members[leader]` under one writer and returns the time from its death until the
/// first acknowledged write that was sent after it (an answer the old leader sent just before
/// it died does not count).
pub async fn time_to_next_write(
    system: System,
    endpoints: &[String],
    members: &mut [ServerProcess],
    leader: usize,
) -> Result<Duration, String> {
    let now = Instant::now();
    let (sender, mut acknowledged) = watch::channel((now, now));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(write_forever(
        system,
        endpoints.to_vec(),
        leader,
        sender,
        Arc::clone(&stop),
    ));
    tokio::time::sleep(WARM_UP).await;
    members[leader].kill9();
    let killed = Instant::now();
    let waited = tokio::time::timeout(LIMIT, async {
        loop {
            if acknowledged.changed().await.is_err() {
                return Err("the writer stopped".to_owned());
            }
            let (sent, answered) = *acknowledged.borrow_and_update();
            if sent > killed {
                return Ok(answered - killed);
            }
        }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let _ = writer.await;
    waited.map_err(|_| format!("{system:?} acknowledged no write within {LIMIT:?} of the kill"))?
}
