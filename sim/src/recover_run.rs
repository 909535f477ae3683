//! A seeded recovery after quorum loss: clients run while the nemesis injects the seed's
//! faults; then every member but the one whose log reaches furthest is lost at once (crashed,
//! with their unsynced writes), and that survivor is stopped and started in recover mode. It
//! must lead a one-node cluster holding its whole log under a higher term; fresh nodes join it;
//! the lost nodes then come back on their old data and must stay out (fenced). Clients run
//! throughout, and the whole history, before and after the disaster, must be linearizable:
//! the survivor whose log reaches furthest holds every acknowledged write.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use madsim::net::NetSim;
use madsim::rand::{Rng, thread_rng};
use madsim::time::sleep;

use crate::checks;
use crate::history::History;
use crate::invariants::Invariants;
use crate::scenario::{
    Scenario, await_condition, await_convergence, empty_cluster, fault_phase, form,
};
use crate::workload::{final_reads, start_clients};

/// What a recovery run found.
#[derive(Debug)]
pub struct RecoverReport {
    /// Client operations recorded.
    pub operations: usize,
    /// The last log index the survivor held when the others were lost.
    pub survivor_last_index: u64,
    /// What broke, if anything.
    pub violations: Vec<String>,
}

/// The id the recovered node takes (ids of the harness's nodes are their index plus one).
const RECOVERED_ID: u64 = 1000;

/// Runs the recovery scenario of `scenario` inside the simulation.
pub async fn simulate_recover(scenario: Scenario) -> RecoverReport {
    let mut violations = Vec::new();
    let net = NetSim::current();
    let mut cluster = empty_cluster(&scenario);
    let mut invariants = Invariants::default();
    if let Err(error) = form(&scenario, &mut cluster).await {
        return RecoverReport {
            operations: 0,
            survivor_last_index: 0,
            violations: vec![error],
        };
    }
    let history = History::default();
    let stop = Arc::new(AtomicBool::new(false));
    let clients = start_clients(scenario.clients, &cluster, &history, &stop);
    let mut faults = scenario.clone();
    faults.fault_phase = Duration::from_secs(6);
    fault_phase(&faults, &mut cluster, &net, &mut invariants).await;
    sleep(Duration::from_millis(thread_rng().gen_range(0..2000))).await;

    // The disaster: all but the member whose log reaches furthest are lost at once.
    let members = cluster.members();
    let last_of = |index: usize| {
        let (purged, entries) = cluster.nodes[index].disk().log();
        entries.last().map(|entry| entry.log_id).or(purged)
    };
    let Some(survivor) = members.iter().copied().max_by_key(|&index| last_of(index)) else {
        return RecoverReport {
            operations: 0,
            survivor_last_index: 0,
            violations: vec!["no member left before the disaster".to_owned()],
        };
    };
    let survivor_last = last_of(survivor);
    let lost: Vec<usize> = members
        .into_iter()
        .filter(|index| *index != survivor)
        .collect();
    for &index in &lost {
        let torn = thread_rng().gen_bool(0.5);
        cluster.crash(index, torn);
        cluster.forget(index);
    }
    let survivor_term = cluster.nodes[survivor]
        .status()
        .map_or(0, |status| status.term)
        .max(survivor_last.map_or(0, |id| id.leader_id.term));
    cluster.stop(survivor);
    cluster.recover(survivor, RECOVERED_ID);
    let node = &cluster.nodes[survivor];
    let led = await_condition(Duration::from_secs(20), || {
        node.status().is_some_and(|status| status.is_leader) || node.start_error().is_some()
    })
    .await;
    let survivor_last_index = survivor_last.map_or(0, |id| id.index);
    if let Some(error) = node.start_error() {
        violations.push(format!("the survivor did not recover: {error}"));
    } else if !led {
        violations.push("the recovered node did not lead within 20 s".to_owned());
    } else if let Some(status) = node.status() {
        if node.id() != RECOVERED_ID {
            violations.push(format!("the recovered node runs as {}", node.id()));
        }
        if status.term <= survivor_term {
            violations.push(format!(
                "the recovered node leads in term {}, not above the survivor's {survivor_term}",
                status.term
            ));
        }
        if status.applied_index < survivor_last_index {
            violations.push(format!(
                "the recovered node applied {} of the {survivor_last_index} entries the survivor held",
                status.applied_index
            ));
        }
    }

    // Fresh nodes join the recovered one as usual, then the lost ones come back on their data.
    let seed = cluster.nodes[survivor].addr.clone();
    for _ in 1..scenario.nodes {
        let added = cluster.add_node(vec![seed.clone()]);
        let node = &cluster.nodes[added];
        await_condition(Duration::from_secs(20), || {
            node.status().is_some_and(|status| status.leader.is_some())
                || node.start_error().is_some()
        })
        .await;
        if let Some(error) = node.start_error() {
            violations.push(format!("node {} could not join: {error}", node.id()));
        }
    }
    for &index in &lost {
        cluster.revive_lost(index);
    }
    sleep(Duration::from_secs(5)).await;

    if let Err(error) = await_convergence(&scenario, &mut cluster, &mut invariants).await {
        violations.push(format!("liveness after the recovery: {error}"));
    }
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        let _ = client.await;
    }
    final_reads(&cluster, &history).await;
    invariants.check(&cluster);
    invariants.check_log_matching(&cluster);
    violations.append(&mut invariants.violations);
    let lost_ids: Vec<u64> = lost
        .iter()
        .map(|&index| cluster.nodes[index].id())
        .collect();
    for index in cluster.members() {
        if let Some(status) = cluster.nodes[index].status() {
            let fenced_in: Vec<u64> = status
                .members
                .iter()
                .map(|(id, _, _)| *id)
                .filter(|id| lost_ids.contains(id))
                .collect();
            if !fenced_in.is_empty() {
                violations.push(format!(
                    "node {} counts lost nodes {fenced_in:?} as members",
                    cluster.nodes[index].id()
                ));
            }
        }
    }
    let records = history.records();
    violations.extend(checks::all(&records).0);
    RecoverReport {
        operations: records.len(),
        survivor_last_index,
        violations,
    }
}

/// Runs the recovery scenario of `scenario` on its own simulated runtime.
pub fn run_recover(scenario: &Scenario) -> RecoverReport {
    let mut runtime =
        madsim::runtime::Runtime::with_seed_and_config(scenario.seed, madsim::Config::default());
    runtime.set_time_limit(Duration::from_secs(600));
    runtime.block_on(simulate_recover(scenario.clone()))
}
