//! One seeded run: form a cluster, run clients while a nemesis injects the scenario's faults,
//! heal, check liveness and convergence, then check the history.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dbadger::simulation::{NodeClock, clear_node_clocks, set_node_clock};
use madsim::net::NetSim;
use madsim::rand::{Rng, thread_rng};
use madsim::time::{Instant, sleep};

use crate::checks;
use crate::cluster::Cluster;
use crate::coverage::{Coverage, Path};
use crate::history::{History, Record, Reply};
use crate::invariants::Invariants;
pub use crate::nemesis::FaultClass;
use crate::nemesis::Nemesis;
use crate::step_monitor::StepMonitor;
use crate::store::{DiskObserver, SyncPolicy};
use crate::workload::{final_reads, start_clients};

/// The node (by index) whose disk syncs slower than the others' (by the scenario's
/// `slow_disk_factor`): its log lags while the others commit, so it applies entries its own
/// log has not synced yet, and a crash can leave its state machine durable past its log.
const SLOW_DISK_NODE: usize = 2;

/// What one run does.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The seed of everything.
    pub seed: u64,
    /// Initial cluster size (3 or 5).
    pub nodes: usize,
    /// Concurrent clients.
    pub clients: u64,
    /// The faults injected.
    pub faults: Vec<FaultClass>,
    /// How long faults are injected (simulated time).
    pub fault_phase: Duration,
    /// How long the healed cluster has to converge (simulated time).
    pub liveness_bound: Duration,
    /// The longest a disk sync takes (each takes a random time from 0.1 ms up to this).
    pub slowest_sync: Duration,
    /// How many times slower the disk of node 3 syncs.
    pub slow_disk_factor: u32,
}

impl Scenario {
    /// The scenario of `seed`: the seed picks one main fault class (cycling through all, so
    /// every class is covered by any nine consecutive seeds), up to two more, and the cluster
    /// size.
    pub fn for_seed(seed: u64) -> Scenario {
        let mut faults = vec![FaultClass::ALL[(seed % FaultClass::ALL.len() as u64) as usize]];
        let mut mix = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 7;
        for _ in 0..2 {
            let class = FaultClass::ALL[(mix % FaultClass::ALL.len() as u64) as usize];
            if mix & 0x100 != 0 && !faults.contains(&class) {
                faults.push(class);
            }
            mix >>= 11;
        }
        Scenario {
            seed,
            nodes: if (seed / 9).is_multiple_of(2) { 3 } else { 5 },
            clients: 6,
            faults,
            fault_phase: Duration::from_secs(12),
            liveness_bound: Duration::from_secs(30),
            // Fast disks, or slow ones that widen the window between a write and its sync.
            slowest_sync: Duration::from_millis([3, 25, 120][((seed / 3) % 3) as usize]),
            slow_disk_factor: [8, 8, 4][((seed / 27) % 3) as usize],
        }
    }

    fn has(&self, class: FaultClass) -> bool {
        self.faults.contains(&class)
    }
}

/// The outcome of a run.
#[derive(Clone, Debug)]
pub struct Report {
    /// The scenario run.
    pub scenario: Scenario,
    /// Client operations recorded.
    pub operations: usize,
    /// Operations that returned successfully.
    pub succeeded: usize,
    /// Operations whose outcome is unknown.
    pub unknown: usize,
    /// Fault actions taken.
    pub fault_actions: usize,
    /// Crashes of nodes (by the nemesis or after a storage error).
    pub crashes: u64,
    /// Simulated time the run took.
    pub simulated: Duration,
    /// A hash of the history and the final state: equal for equal seeds.
    pub trace_hash: u64,
    /// How often the run took each recovery path and injected each class of fault.
    pub coverage: Coverage,
    /// Store changes the step monitor checked.
    pub checked_steps: u64,
    /// How long the history checks took (wall time).
    pub check_time: Duration,
    /// Everything that went wrong; empty for a passing run.
    pub violations: Vec<String>,
    /// Every client operation, in completion order.
    pub history: Vec<Record>,
}

impl Report {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// The one command that replays `seed` (see docs/simulation.md).
pub fn replay_command(seed: u64) -> String {
    format!("cargo sim-run --release -p dbadger-sim --bin sweep -- --seed {seed}")
}

/// Runs `scenario` in a fresh simulation with its seed, then checks its history (outside the
/// simulation, so that the checkers' time is wall time); returns its report.
pub fn run(scenario: &Scenario) -> Report {
    let mut runtime =
        madsim::runtime::Runtime::with_seed_and_config(scenario.seed, madsim::Config::default());
    runtime.set_time_limit(Duration::from_secs(600));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(simulate(scenario.clone()))
    }));
    let mut report = outcome.unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_owned()))
            .unwrap_or_else(|| "a non-text panic".to_owned());
        Report {
            scenario: scenario.clone(),
            operations: 0,
            succeeded: 0,
            unknown: 0,
            fault_actions: 0,
            crashes: 0,
            simulated: Duration::ZERO,
            trace_hash: 0,
            coverage: Coverage::default(),
            checked_steps: 0,
            check_time: Duration::ZERO,
            violations: vec![format!("the simulation panicked: {message}")],
            history: Vec::new(),
        }
    });
    let (violations, took) = checks::all(&report.history);
    report.violations.extend(violations);
    report.check_time = took;
    report
}

/// A cluster with no nodes yet for `scenario`, every node clock reset: its disks take 100 µs
/// up to the scenario's slowest sync to make a write durable.
pub fn empty_cluster(scenario: &Scenario) -> Cluster {
    clear_node_clocks();
    Cluster::new(SyncPolicy::Delayed {
        min: Duration::from_micros(100),
        max: scenario.slowest_sync,
    })
}

/// The body of a run, inside the simulation; the history is checked by [`run`], after it.
pub async fn simulate(scenario: Scenario) -> Report {
    let started = Instant::now();
    let mut violations = Vec::new();
    let net = NetSim::current();
    let mut cluster = empty_cluster(&scenario);
    cluster.slow_disk(SLOW_DISK_NODE, scenario.slow_disk_factor);
    let monitor = Arc::new(StepMonitor::default());
    cluster.observe(Arc::clone(&monitor) as Arc<dyn DiskObserver>);
    let mut invariants = Invariants::default();
    if let Err(error) = form(&scenario, &mut cluster).await {
        violations.push(error);
        return finish(scenario, started, &cluster, Vec::new(), 0, violations);
    }
    let history = History::default();
    let stop = Arc::new(AtomicBool::new(false));
    let clients = start_clients(scenario.clients, &cluster, &history, &stop);

    let (fault_actions, mut coverage) =
        fault_phase(&scenario, &mut cluster, &net, &mut invariants).await;
    let healed = Instant::now();
    let converged = await_convergence(&scenario, &mut cluster, &mut invariants).await;
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        let _ = client.await;
    }
    if let Err(error) = converged {
        violations.push(format!(
            "liveness: {error} within {:?} after healing",
            Instant::now() - healed
        ));
    }
    // Final linearizable reads of every key: an acknowledged write that was lost shows here.
    final_reads(&cluster, &history).await;
    invariants.check(&cluster);
    invariants.check_log_matching(&cluster);
    violations.append(&mut invariants.violations);
    let (step_violations, steps) = monitor.results();
    violations.extend(step_violations);
    let records = history.records();
    coverage.add(
        Path::LeaderChangeWithUncommittedEntries,
        invariants.leader_changes_with_uncommitted,
    );
    let mut report = finish(
        scenario,
        started,
        &cluster,
        records,
        fault_actions,
        violations,
    );
    add_disk_coverage(&mut coverage, &cluster);
    report.coverage = coverage;
    report.checked_steps = steps;
    report
}

/// Adds what the disks of `cluster` counted to `coverage`.
pub(crate) fn add_disk_coverage(coverage: &mut Coverage, cluster: &Cluster) {
    for node in &cluster.nodes {
        let counters = node.disk().counters();
        coverage.add(Path::SnapshotBuilt, counters.snapshots_built);
        coverage.add(Path::SnapshotInstalledOnEmpty, counters.installs_on_empty);
        coverage.add(
            Path::SnapshotInstalledOverOlderData,
            counters.installs_over_data,
        );
        coverage.add(
            Path::ConflictingSuffixTruncated,
            counters.truncated_suffixes,
        );
        coverage.add(Path::CrashLostUnsyncedLog, counters.crashes_losing_log);
        coverage.add(
            Path::CrashLostStateThenReplay,
            counters.replays_after_lost_state,
        );
        coverage.add(
            Path::BootWithStateAheadOfLog,
            counters.boots_with_state_ahead_of_log,
        );
    }
}

/// The fault phase: the nemesis injects the scenario's faults, the supervisor restarts failed
/// nodes and the invariants are checked every 20 ms; then every fault is healed. Returns how
/// many fault actions were taken, and the nemesis's coverage (actions by class, interrupted
/// membership changes).
pub(crate) async fn fault_phase(
    scenario: &Scenario,
    cluster: &mut Cluster,
    net: &NetSim,
    invariants: &mut Invariants,
) -> (usize, Coverage) {
    let mut nemesis = Nemesis::new(&scenario.faults);
    let fault_end = Instant::now() + scenario.fault_phase;
    while Instant::now() < fault_end {
        sleep(Duration::from_millis(20)).await;
        nemesis.step(cluster, net).await;
        supervise(cluster);
        invariants.check(cluster);
    }
    nemesis.heal(cluster, net);
    (nemesis.actions, nemesis.coverage)
}

fn finish(
    scenario: Scenario,
    started: Instant,
    cluster: &Cluster,
    records: Vec<Record>,
    fault_actions: usize,
    violations: Vec<String>,
) -> Report {
    let mut hasher = DefaultHasher::new();
    records.hash(&mut hasher);
    for node in &cluster.nodes {
        for (key, found) in node.disk().dump() {
            (key, found.value, found.revision).hash(&mut hasher);
        }
    }
    Report {
        operations: records.len(),
        succeeded: records
            .iter()
            .filter(|record| {
                matches!(
                    record.reply,
                    Reply::Read(_) | Reply::Written { .. } | Reply::Swapped { .. }
                )
            })
            .count(),
        unknown: records
            .iter()
            .filter(|record| matches!(record.reply, Reply::Unknown(_)))
            .count(),
        fault_actions,
        crashes: cluster
            .nodes
            .iter()
            .map(|node| node.disk().counters().crashes)
            .sum(),
        simulated: Instant::now() - started,
        trace_hash: hasher.finish(),
        coverage: Coverage::default(),
        checked_steps: 0,
        check_time: Duration::ZERO,
        violations,
        scenario,
        history: records,
    }
}

/// Clock offsets up to ±2 s and drift of ±20%, drawn per node.
fn random_clock() -> NodeClock {
    let mut rng = thread_rng();
    NodeClock {
        offset_nanos: rng.gen_range(-2_000_000_000..=2_000_000_000),
        rate: rng.gen_range(0.8..=1.2),
    }
}

pub(crate) async fn await_condition(bound: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + bound;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        sleep(Duration::from_millis(50)).await;
    }
    condition()
}

/// Bootstraps the first node and joins the others through it, before any fault.
pub(crate) async fn form(scenario: &Scenario, cluster: &mut Cluster) -> Result<(), String> {
    for index in 0..scenario.nodes {
        let seeds = if index == 0 {
            Vec::new()
        } else {
            vec![cluster.nodes[0].addr.clone()]
        };
        if scenario.has(FaultClass::Clock) {
            set_node_clock(&format!("node-{}", index + 1), random_clock());
        }
        let added = cluster.add_node(seeds);
        let node = &cluster.nodes[added];
        let ready = await_condition(Duration::from_secs(20), || {
            node.status().is_some_and(|status| status.leader.is_some())
                || node.start_error().is_some()
        })
        .await;
        if let Some(error) = node.start_error() {
            return Err(format!("node {} could not start: {error}", node.id()));
        }
        if !ready {
            return Err(format!(
                "node {} did not join within 20 s (node 1's status: {:?})",
                node.id(),
                cluster.nodes[0].status()
            ));
        }
    }
    Ok(())
}

/// Restarts nodes whose disk failed or that could not start, as a process supervisor would.
pub(crate) fn supervise(cluster: &mut Cluster) {
    let failed: Vec<usize> = cluster
        .nodes
        .iter()
        .filter(|node| {
            !node.down && !node.removed && (node.disk().failed() || node.start_error().is_some())
        })
        .map(|node| node.index)
        .collect();
    for index in failed {
        cluster.crash(index, false);
        cluster.restart(index);
    }
}

/// After healing: a leader, every member applied up to the same index, identical key-value
/// state on every member, within the scenario's bound.
pub(crate) async fn await_convergence(
    scenario: &Scenario,
    cluster: &mut Cluster,
    invariants: &mut Invariants,
) -> Result<(), String> {
    let deadline = Instant::now() + scenario.liveness_bound;
    let mut last_problem = String::from("not checked");
    while Instant::now() < deadline {
        sleep(Duration::from_millis(100)).await;
        supervise(cluster);
        retire_non_members(cluster);
        invariants.check(cluster);
        match converged(cluster) {
            Ok(()) => return Ok(()),
            Err(problem) => last_problem = problem,
        }
    }
    Err(last_problem)
}

/// A removal whose outcome the harness did not learn (its call failed, yet the change went
/// through) leaves a node the harness counts as a member outside the leader's membership:
/// stop it, as an operator would once the membership shows it gone.
fn retire_non_members(cluster: &mut Cluster) {
    let leader_members = cluster.members().into_iter().find_map(|index| {
        let status = cluster.nodes[index].status()?;
        status.is_leader.then(|| {
            status
                .members
                .iter()
                .map(|(id, _, _)| *id)
                .collect::<Vec<_>>()
        })
    });
    let Some(leader_members) = leader_members else {
        return;
    };
    let gone: Vec<usize> = cluster
        .members()
        .into_iter()
        .filter(|index| !leader_members.contains(&cluster.nodes[*index].id()))
        .collect();
    for index in gone {
        cluster.retire(index);
    }
}

fn converged(cluster: &Cluster) -> Result<(), String> {
    let members = cluster.members();
    let mut statuses = Vec::new();
    for &index in &members {
        let node = &cluster.nodes[index];
        let status = node.status().ok_or_else(|| match node.start_error() {
            Some(error) => format!(
                "node {} is not running: it could not start: {error}",
                node.id()
            ),
            None => format!("node {} is not running", node.id()),
        })?;
        statuses.push((node, status));
    }
    let leaders: Vec<_> = statuses
        .iter()
        .filter(|(_, status)| status.is_leader)
        .collect();
    let [(_, leader)] = leaders.as_slice() else {
        return Err(format!("{} leaders", leaders.len()));
    };
    for (node, status) in &statuses {
        if status.applied_index != leader.committed_index || status.leader != leader.leader {
            return Err(format!(
                "node {} applied {} of {} (leader {:?})",
                node.id(),
                status.applied_index,
                leader.committed_index,
                status.leader.as_ref().map(|(id, _)| id)
            ));
        }
    }
    let reference = statuses[0].0.disk().dump();
    for (node, _) in &statuses[1..] {
        if node.disk().dump() != reference {
            return Err(format!(
                "node {} holds different data from node {}",
                node.id(),
                statuses[0].0.id()
            ));
        }
    }
    Ok(())
}
