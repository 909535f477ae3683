//! A seeded restore under faults: form a cluster, write a key space, take a snapshot, change
//! the key space, then restore the snapshot through a random node while the nemesis injects the
//! seed's faults; heal and check. The restore must be all or nothing on every node: once the
//! cluster has converged, every member holds either the state before the restore or exactly
//! the snapshot's pairs (each at one revision, the restore's), the same on every member; and a
//! restore that reported success must have taken effect.

use std::io::Read;
use std::time::Duration;

use dbadger::{Db, ReadPreference};
use dbadger_core::storage::SnapshotData;
use dbadger_core::storage::memory::MemorySnapshot;
use madsim::net::NetSim;
use madsim::rand::{Rng, thread_rng};
use madsim::time::{Instant, sleep};

use crate::invariants::Invariants;
use crate::scenario::{Scenario, await_convergence, empty_cluster, fault_phase, form};

/// How many keys the snapshot holds, and how many the state before the restore.
const KEYS: u32 = 120;

/// What a restore run found.
#[derive(Debug)]
pub struct RestoreReport {
    /// Whether the restore reported success.
    pub restored: bool,
    /// Why it did not, when it did not.
    pub failure: Option<String>,
    /// What broke, if anything.
    pub violations: Vec<String>,
}

type Pairs = Vec<(Vec<u8>, Vec<u8>, u64)>;

async fn pairs(db: &Db) -> Result<Pairs, String> {
    let range = db
        .get_range(None, None, 0, ReadPreference::Local)
        .await
        .map_err(|error| error.to_string())?;
    Ok(range
        .entries
        .into_iter()
        .map(|pair| (pair.key, pair.value, pair.revision))
        .collect())
}

async fn write(db: &Db, prefix: &str, value: &[u8]) -> Result<(), String> {
    let keys: Vec<Vec<u8>> = (0..KEYS)
        .map(|n| format!("{prefix}/{n:04}").into_bytes())
        .collect();
    let values = vec![value.to_vec(); keys.len()];
    for (keys, values) in keys.chunks(40).zip(values.chunks(40)) {
        // Idempotent: sent again while it fails in a way a retry may fix.
        retried(|| db.set_many(keys, values)).await?;
    }
    Ok(())
}

/// Runs `call` until it succeeds, retrying retryable errors for up to 20 s.
async fn retried<T, F>(call: impl Fn() -> F) -> Result<T, String>
where
    F: Future<Output = Result<T, dbadger::Error>>,
{
    let give_up = Instant::now() + Duration::from_secs(20);
    loop {
        match call().await {
            Ok(value) => return Ok(value),
            Err(error) if error.is_retryable() && Instant::now() < give_up => {
                sleep(Duration::from_millis(50)).await;
            }
            Err(error) => return Err(format!("a step before the faults failed: {error}")),
        }
    }
}

/// Runs the restore scenario of `scenario` inside the simulation.
pub async fn simulate_restore(scenario: Scenario) -> RestoreReport {
    let mut violations = Vec::new();
    let net = NetSim::current();
    let mut cluster = empty_cluster(&scenario);
    let mut invariants = Invariants::default();
    let prepared = async {
        form(&scenario, &mut cluster).await?;
        let db = cluster.nodes[0].db().ok_or("node 1 is not running")?;
        write(&db, "snap", b"in the snapshot").await?;
        let snapshot = retried(|| db.snapshot()).await?;
        let (_, mut reader) = db
            .open_snapshot(&snapshot.id)
            .map_err(|error| error.to_string())?;
        let mut bytes = Vec::new();
        reader
            .read_to_end(&mut bytes)
            .map_err(|error| error.to_string())?;
        retried(|| db.delete_all()).await?;
        write(&db, "before", b"replaced by the restore").await?;
        Ok::<_, String>((bytes, pairs(&db).await?))
    }
    .await;
    let (snapshot, before) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            return RestoreReport {
                restored: false,
                failure: None,
                violations: vec![error],
            };
        }
    };
    let snapshot = MemorySnapshot::from_bytes(snapshot);
    let via = thread_rng().gen_range(0..cluster.nodes.len());
    let restorer = cluster.nodes[via].db();
    let restoring = madsim::task::spawn(async move {
        let db = restorer.ok_or_else(|| "the restoring node is not running".to_owned())?;
        let source = move || snapshot.open().map_err(std::io::Error::other);
        db.restore_from(&source)
            .await
            .map_err(|error| error.to_string())
    });
    fault_phase(&scenario, &mut cluster, &net, &mut invariants).await;
    // The restoring node may have crashed with its call: its task then never answers.
    let answer = match madsim::time::timeout(Duration::from_secs(30), restoring).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(_)) => Err("the restoring node crashed with the call".to_owned()),
        Err(_) => Err("the restore did not answer".to_owned()),
    };
    let failure = answer.as_ref().err().cloned();
    let restored = answer.ok();
    if let Err(error) = await_convergence(&scenario, &mut cluster, &mut invariants).await {
        violations.push(format!("liveness after the restore: {error}"));
    }
    violations.append(&mut invariants.violations);
    let members = cluster.members();
    let mut states = Vec::new();
    for &index in &members {
        if let Some(db) = cluster.nodes[index].db() {
            match pairs(&db).await {
                Ok(state) => states.push((index, state)),
                Err(error) => violations.push(format!("node {}: {error}", index + 1)),
            }
        }
    }
    for (index, state) in &states {
        let is_before = *state == before;
        let is_restored = state.len() == KEYS as usize
            && state
                .iter()
                .all(|(key, value, _)| key.starts_with(b"snap/") && value == b"in the snapshot")
            && state.windows(2).all(|pair| pair[0].2 == pair[1].2);
        if !is_before && !is_restored {
            violations.push(format!(
                "node {}: {} pairs, neither the state before the restore nor the snapshot's",
                index + 1,
                state.len()
            ));
        }
        if let Some(info) = &restored
            && !(is_restored && state.first().map(|pair| pair.2) == Some(info.revision))
        {
            violations.push(format!(
                "node {}: the restore reported success at revision {}, but the node does not \
                 hold the snapshot at it",
                index + 1,
                info.revision
            ));
        }
    }
    if states.windows(2).any(|pair| pair[0].1 != pair[1].1) {
        violations.push("the members do not hold the same state".to_owned());
    }
    RestoreReport {
        restored: restored.is_some(),
        failure,
        violations,
    }
}

/// Runs the restore scenario of `scenario` on its own simulated runtime, without its clock
/// faults: under this scenario's skews the writes that prepare the restore may not get through
/// in time (the main scenario covers clock faults, with clients that tolerate it).
pub fn run_restore(scenario: &Scenario) -> RestoreReport {
    let mut scenario = scenario.clone();
    scenario
        .faults
        .retain(|class| *class != crate::nemesis::FaultClass::Clock);
    let mut runtime =
        madsim::runtime::Runtime::with_seed_and_config(scenario.seed, madsim::Config::default());
    runtime.set_time_limit(Duration::from_secs(600));
    runtime.block_on(simulate_restore(scenario))
}
