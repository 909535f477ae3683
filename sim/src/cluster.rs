//! A cluster of real dbadger nodes on madsim: each node is a simulated host whose boot task
//! opens its [`SimDisk`] and runs [`Db::start_with_storage`]. The harness keeps the disks and
//! the running `Db` handles, so it can crash, restart, pause and inspect nodes.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dbadger::{Config, Db, NodeStatus, StartMode};
use madsim::runtime::{Handle, NodeHandle};

use crate::store::{DiskObserver, SimDisk, SyncPolicy};

/// The port every node serves on.
const PORT: u16 = 7400;

/// What a node boots on, and what became of its last boot.
struct Running {
    /// The Raft node id it runs as.
    id: u64,
    /// Its disk, which outlives crashes (replaced by a recovery).
    disk: Arc<SimDisk>,
    /// How its next boot starts.
    start: StartMode,
    /// The id of the new one-node cluster its next boot recovers into (`StartMode::Recover`).
    recover_as: Option<u64>,
    db: Option<Db>,
    boot: u64,
    /// How many times its process has started, counted as each starts (before its boot
    /// completes: a node serves requests while it starts, a join for one).
    processes: u64,
    start_error: Option<String>,
}

impl Running {
    fn new(id: u64, disk: Arc<SimDisk>, start: StartMode) -> Running {
        Running {
            id,
            disk,
            start,
            recover_as: None,
            db: None,
            boot: 0,
            processes: 0,
            start_error: None,
        }
    }
}

/// One simulated dbadger node.
pub struct SimNode {
    /// Position in the cluster (the Raft node id minus one, until a recovery gives it another).
    pub index: usize,
    /// Host name (the key of its clock, see `dbadger::simulation::set_node_clock`).
    pub name: String,
    /// The address clients and peers use.
    pub addr: String,
    handle: NodeHandle,
    running: Arc<Mutex<Running>>,
    /// Whether the harness has it crashed (and not yet restarted).
    pub down: bool,
    /// Whether the harness has it paused.
    pub paused: bool,
    /// Whether it was removed from the cluster (it stays down).
    pub removed: bool,
    /// How many times it moved to a new address.
    pub moves: u32,
}

impl SimNode {
    /// The Raft node id.
    pub fn id(&self) -> u64 {
        self.running().id
    }

    /// Its disk, which outlives crashes.
    pub fn disk(&self) -> Arc<SimDisk> {
        Arc::clone(&self.running().disk)
    }

    fn running(&self) -> std::sync::MutexGuard<'_, Running> {
        self.running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The node's `Db` handle while it runs.
    pub fn db(&self) -> Option<Db> {
        self.running().db.clone()
    }

    /// The node's status, while it runs.
    pub fn status(&self) -> Option<NodeStatus> {
        self.db().map(|db| db.stats())
    }

    /// How many times the node has booted.
    pub fn boot(&self) -> u64 {
        self.running().boot
    }

    /// Why its last start failed, if it did.
    pub fn start_error(&self) -> Option<String> {
        self.running().start_error.clone()
    }
}

/// The node configuration of the simulator: short timeouts and a small snapshot threshold, so
/// that elections, snapshots and installs happen within seconds of simulated time.
///
/// The heartbeat timeout (300 ms, elections after 300 to 450 ms of silence) and the commit
/// timeout (30 ms, also the heartbeat interval) are chosen for speed: each heartbeat is a
/// simulated RPC with its timers, and with 150 ms and 10 ms seeds ran 1.6x slower
/// (docs/simulation.md, Speed). Every recovery path and fault class is still reached by more
/// than 5% of the CI seeds (the suite checks it).
pub fn node_config(addr: &str, start: StartMode) -> Config {
    Config {
        bind: addr.to_owned(),
        start,
        heartbeat_timeout: Duration::from_millis(300),
        election_timeout: Duration::from_millis(150),
        leader_lease_timeout: Duration::from_millis(100),
        commit_timeout: Duration::from_millis(30),
        snapshot_threshold: 40,
        trailing_logs: 20,
        snapshot_transfer_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(2),
        ..Config::default()
    }
}

/// A node as clients see it: where to send requests, and its boot count.
#[derive(Clone)]
pub struct Target {
    /// The node's index.
    pub index: usize,
    /// Its address.
    pub addr: String,
    running: Arc<Mutex<Running>>,
}

impl Target {
    /// How many times the node's process has started so far: which process answers now.
    pub fn process(&self) -> u64 {
        self.running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .processes
    }
}

/// The current members, shared with the client tasks.
#[derive(Clone, Default)]
pub struct Directory {
    members: Arc<Mutex<Vec<Target>>>,
}

impl Directory {
    fn members(&self) -> std::sync::MutexGuard<'_, Vec<Target>> {
        self.members
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A random member.
    pub fn pick(&self) -> Option<Target> {
        use madsim::rand::seq::SliceRandom;
        self.members()
            .choose(&mut madsim::rand::thread_rng())
            .cloned()
    }
}

/// The simulated nodes of one run.
pub struct Cluster {
    handle: Handle,
    directory: Directory,
    /// Every node ever created, by index.
    pub nodes: Vec<SimNode>,
    sync: SyncPolicy,
    /// A node whose disk syncs this many times slower than the others.
    slow_disk: Option<(usize, u32)>,
    observer: Option<Arc<dyn DiskObserver>>,
}

impl Cluster {
    /// An empty cluster; nodes sync their disks with `sync` latency.
    pub fn new(sync: SyncPolicy) -> Cluster {
        Cluster {
            handle: Handle::current(),
            directory: Directory::default(),
            nodes: Vec::new(),
            sync,
            slow_disk: None,
            observer: None,
        }
    }

    /// Gives node `index`, when it is added, a disk that syncs `factor` times slower: a
    /// follower whose log lags the others' while the cluster commits without it.
    pub fn slow_disk(&mut self, index: usize, factor: u32) {
        self.slow_disk = Some((index, factor));
    }

    /// Attaches `observer` to the disk of every node added from now on.
    pub fn observe(&mut self, observer: Arc<dyn DiskObserver>) {
        self.observer = Some(observer);
    }

    /// Creates and boots node `index`: the first bootstraps, the others join through `seeds`.
    pub fn add_node(&mut self, seeds: Vec<String>) -> usize {
        let index = self.nodes.len();
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, index as u8 + 1));
        let addr = format!("{ip}:{PORT}");
        let name = format!("node-{}", index + 1);
        let start = if seeds.is_empty() {
            StartMode::Bootstrap
        } else {
            StartMode::Join(seeds)
        };
        let policy = match self.slow_disk {
            Some((slow, factor)) if slow == index => self.sync.slowed(factor),
            _ => self.sync,
        };
        let disk = SimDisk::new(policy);
        if let Some(observer) = &self.observer {
            disk.observe(Arc::clone(observer), index as u64 + 1);
        }
        let running = Arc::new(Mutex::new(Running::new(index as u64 + 1, disk, start)));
        let handle = self.boot_host(&name, ip, &running);
        self.directory.members().push(Target {
            index,
            addr: addr.clone(),
            running: Arc::clone(&running),
        });
        self.nodes.push(SimNode {
            index,
            name,
            addr,
            handle,
            running,
            down: false,
            paused: false,
            removed: false,
            moves: 0,
        });
        index
    }

    /// A simulated host named `name` at `ip`, whose boot task runs the node `running`
    /// describes (recovering it first when asked to).
    fn boot_host(&self, name: &str, ip: IpAddr, running: &Arc<Mutex<Running>>) -> NodeHandle {
        let addr = format!("{ip}:{PORT}");
        let running = Arc::clone(running);
        let sync = self.sync;
        self.handle
            .create_node()
            .name(name.to_owned())
            .ip(ip)
            .init(move || {
                let running = Arc::clone(&running);
                let addr = addr.clone();
                async move {
                    running
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .processes += 1;
                    let outcome = boot(&running, &addr, sync).await;
                    {
                        let mut running = running
                            .lock()
                            .unwrap_or_else(|poisoned| poisoned.into_inner());
                        running.boot += 1;
                        match outcome {
                            Ok(db) => {
                                running.db = Some(db);
                                running.start_error = None;
                            }
                            Err(error) => {
                                // The process would exit; the supervisor (`supervise`)
                                // restarts it. It stays a live madsim node meanwhile, so
                                // that a restart boots it again.
                                running.start_error = Some(error);
                            }
                        }
                    }
                    // madsim ends a node, with all its tasks, when its first task returns:
                    // this task is the node's process and lives until it is killed.
                    std::future::pending::<()>().await;
                }
            })
            .build()
    }

    /// Node `index` crashes and comes back on its disk at another address (a host moved to a
    /// new IP): the node records its new address in the membership itself.
    pub fn move_node(&mut self, index: usize) {
        if self.nodes[index].removed {
            return;
        }
        self.crash(index, false);
        let seeds: Vec<String> = self
            .members()
            .into_iter()
            .filter(|&member| member != index)
            .map(|member| self.nodes[member].addr.clone())
            .collect();
        let moves = self.nodes[index].moves + 1;
        let ip = IpAddr::V4(Ipv4Addr::new(
            10,
            1 + (moves % 200) as u8,
            0,
            index as u8 + 1,
        ));
        let addr = format!("{ip}:{PORT}");
        let (name, running) = {
            let node = &self.nodes[index];
            (node.name.clone(), Arc::clone(&node.running))
        };
        {
            let mut running = running
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            running.start_error = None;
            running.start = moved_start(&running.start, seeds);
        }
        let handle = self.boot_host(&name, ip, &running);
        for target in self.directory.members().iter_mut() {
            if target.index == index {
                target.addr = addr.clone();
            }
        }
        let node = &mut self.nodes[index];
        node.handle = handle;
        node.addr = addr;
        node.moves = moves;
        node.down = false;
    }

    /// The members as clients see them.
    pub fn directory(&self) -> Directory {
        self.directory.clone()
    }

    /// Node `index` left the cluster: stop it for good and stop sending it requests.
    pub fn retire(&mut self, index: usize) {
        self.crash(index, false);
        self.forget(index);
    }

    /// The madsim id of node `index`, for the network simulator.
    pub fn madsim_id(&self, index: usize) -> madsim::task::NodeId {
        self.nodes[index].handle.id()
    }

    /// Crashes node `index`: its tasks die and its unsynced writes are lost (`torn`: except a
    /// random prefix).
    pub fn crash(&mut self, index: usize, torn: bool) {
        let node = &mut self.nodes[index];
        self.handle.kill(node.handle.id());
        node.running().db = None;
        node.disk().crash(torn);
        node.down = true;
        node.paused = false;
    }

    /// Stops node `index` in an orderly way: everything it wrote reaches its disk first.
    pub fn stop(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        self.handle.kill(node.handle.id());
        node.running().db = None;
        node.disk().stop();
        node.down = true;
        node.paused = false;
    }

    /// Boots the stopped node `index` in recover mode (`dbadger node --recover`): its data
    /// becomes a new one-node cluster, as node `new_id`, at the same address.
    pub fn recover(&mut self, index: usize, new_id: u64) {
        let node = &mut self.nodes[index];
        {
            let mut running = node.running();
            running.db = None;
            running.start_error = None;
            running.start = StartMode::Recover;
            running.recover_as = Some(new_id);
        }
        self.handle.restart(node.handle.id());
        node.down = false;
        node.paused = false;
    }

    /// Boots the lost node `index` again on its old disk, as an operator might by mistake
    /// after the cluster was recovered without it. It stays outside the harness's members.
    pub fn revive_lost(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        {
            let mut running = node.running();
            running.db = None;
            running.start_error = None;
        }
        self.handle.restart(node.handle.id());
        node.down = false;
    }

    /// Takes node `index` out of the members without stopping it (a lost node that may come
    /// back, see [`Cluster::revive_lost`]).
    pub fn forget(&mut self, index: usize) {
        self.nodes[index].removed = true;
        self.directory
            .members()
            .retain(|target| target.index != index);
    }

    /// Boots a crashed node again on its disk (or one whose start failed).
    pub fn restart(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        // Only a crashed node, or one whose start failed, boots again: a node that came back
        // meanwhile (moved to a new address) keeps running.
        if node.removed || (!node.down && node.running().start_error.is_none()) {
            return;
        }
        {
            let mut running = node.running();
            running.db = None;
            running.start_error = None;
        }
        self.handle.restart(node.handle.id());
        node.down = false;
        node.paused = false;
    }

    /// Stops scheduling node `index`'s tasks (a stopped process or a long GC pause).
    pub fn pause(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        self.handle.pause(node.handle.id());
        node.paused = true;
    }

    /// Resumes a paused node.
    pub fn resume(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        self.handle.resume(node.handle.id());
        node.paused = false;
    }

    /// The indices of the nodes that are members (not removed).
    pub fn members(&self) -> Vec<usize> {
        self.nodes
            .iter()
            .filter(|node| !node.removed)
            .map(|node| node.index)
            .collect()
    }

    /// The addresses of the members.
    pub fn member_addrs(&self) -> Vec<String> {
        self.members()
            .into_iter()
            .map(|index| self.nodes[index].addr.clone())
            .collect()
    }
}

/// How a node that moved to a new address starts: with its command line unchanged, as an
/// operator's would be, its join seeds pointed at the members' current addresses. A node whose
/// disk holds a cluster ignores them and announces its new address; one that moved before its
/// join reached it (its disk still empty) joins again from the new address, where starting it
/// as a plain resume would leave it waiting for a leader that sends to the old one.
fn moved_start(configured: &StartMode, seeds: Vec<String>) -> StartMode {
    match configured {
        StartMode::Join(_) => StartMode::Join(seeds),
        _ => StartMode::Resume,
    }
}

/// One boot of a node: recover first when asked to, then start on its disk.
async fn boot(running: &Mutex<Running>, addr: &str, sync: SyncPolicy) -> Result<Db, String> {
    let lock = || {
        running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    };
    let (start, recover_as) = {
        let running = lock();
        (running.start.clone(), running.recover_as)
    };
    if let (StartMode::Recover, Some(new_id)) = (&start, recover_as) {
        let (old_id, old_disk) = {
            let running = lock();
            (running.id, Arc::clone(&running.disk))
        };
        let config = node_config(addr, StartMode::Recover);
        let fresh = SimDisk::new(sync);
        let recovered = {
            let (old_log, old_machine) = old_disk.open();
            let (new_log, new_machine) = fresh.open();
            Db::recover_storage(
                &config,
                (old_id, &old_log, &old_machine),
                (new_id, &new_log, &new_machine),
            )
            .await
            .map_err(|error| error.to_string())?
        };
        // The recovery is durable before the node starts on it, as on LMDB.
        fresh.stop();
        old_disk.stop();
        let mut running = lock();
        if recovered {
            running.id = new_id;
            running.disk = fresh;
        }
        running.start = StartMode::Resume;
        running.recover_as = None;
    }
    let (id, disk, start) = {
        let running = lock();
        (running.id, Arc::clone(&running.disk), running.start.clone())
    };
    let (log, machine) = disk.open();
    Db::start_with_storage(node_config(addr, start), id, log, machine)
        .await
        .map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moved_joiner_keeps_joining_through_the_current_members() {
        let seeds = vec!["10.1.0.2:7400".to_owned()];
        assert_eq!(
            moved_start(
                &StartMode::Join(vec!["10.0.0.2:7400".to_owned()]),
                seeds.clone()
            ),
            StartMode::Join(seeds.clone())
        );
        assert_eq!(
            moved_start(&StartMode::Bootstrap, seeds.clone()),
            StartMode::Resume
        );
        assert_eq!(moved_start(&StartMode::Resume, seeds), StartMode::Resume);
    }
}
