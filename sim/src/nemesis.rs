//! The fault injector: from the run's seed, it starts and ends faults of the scenario's classes
//! (docs/simulation.md lists them) and heals them all at the end of the fault phase.

use std::time::Duration;

use dbadger::simulation::{NodeClock, set_node_clock};
use madsim::net::NetSim;
use madsim::rand::{Rng, seq::SliceRandom, thread_rng};
use madsim::time::Instant;

use crate::cluster::Cluster;
use crate::coverage::{Coverage, Path};
use crate::store::FaultRates;

/// A class of fault the nemesis can inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultClass {
    /// Symmetric partitions: a random minority/majority split, or one node cut off.
    Partition,
    /// One-way link failures.
    OneWay,
    /// The current leader cut off from everyone.
    LeaderIsolation,
    /// Message loss and a wide latency spread on every link.
    Lossy,
    /// Crash (kill) and restart, losing unsynced writes, sometimes with a torn last batch;
    /// sometimes every running member at once (a power failure).
    Crash,
    /// Pause and resume a node.
    Pause,
    /// Per-node clock offsets and drift, with drift changes while running.
    Clock,
    /// Storage write, sync and read errors.
    Storage,
    /// Remove a member (through any member, or by its own graceful leave) and add a fresh
    /// node; or move a member to a new address.
    Membership,
}

impl FaultClass {
    /// Every class.
    pub const ALL: [FaultClass; 9] = [
        FaultClass::Partition,
        FaultClass::OneWay,
        FaultClass::LeaderIsolation,
        FaultClass::Lossy,
        FaultClass::Crash,
        FaultClass::Pause,
        FaultClass::Clock,
        FaultClass::Storage,
        FaultClass::Membership,
    ];
}

/// The fault injector: every step it may start or end a fault of the scenario's classes.
pub(crate) struct Nemesis {
    classes: Vec<FaultClass>,
    /// Links cut now (source, destination madsim ids).
    cut: Vec<(madsim::task::NodeId, madsim::task::NodeId)>,
    /// When the current network fault or pause ends.
    heal_at: Option<Instant>,
    /// Crashed nodes and when they restart.
    restarts: Vec<(usize, Instant)>,
    paused: Vec<usize>,
    next_action: Instant,
    /// Fault actions taken.
    pub(crate) actions: usize,
    /// Fault actions taken, by class, and interrupted membership changes.
    pub(crate) coverage: Coverage,
}

impl Nemesis {
    pub(crate) fn new(classes: &[FaultClass]) -> Nemesis {
        Nemesis {
            classes: classes.to_vec(),
            cut: Vec::new(),
            heal_at: None,
            restarts: Vec::new(),
            paused: Vec::new(),
            next_action: Instant::now() + Duration::from_millis(500),
            actions: 0,
            coverage: Coverage::default(),
        }
    }

    fn running_members(cluster: &Cluster) -> Vec<usize> {
        cluster
            .members()
            .into_iter()
            .filter(|index| !cluster.nodes[*index].down && !cluster.nodes[*index].paused)
            .collect()
    }

    fn leader(cluster: &Cluster) -> Option<usize> {
        cluster.members().into_iter().find(|index| {
            cluster.nodes[*index]
                .status()
                .is_some_and(|status| status.is_leader)
        })
    }

    /// Whether the leader's membership records every member at its current address: nodes
    /// move one at a time, as operators move them (while a majority's addresses are stale, no
    /// quorum can record the new ones, and only a recovery helps).
    fn addresses_settled(cluster: &Cluster) -> bool {
        let Some(leader) = Nemesis::leader(cluster) else {
            return false;
        };
        let Some(status) = cluster.nodes[leader].status() else {
            return false;
        };
        cluster.members().iter().all(|&index| {
            let node = &cluster.nodes[index];
            status
                .members
                .iter()
                .any(|(id, addr, _)| *id == node.id() && *addr == node.addr)
        })
    }

    fn cut_link(&mut self, cluster: &Cluster, net: &NetSim, from: usize, to: usize) {
        let link = (cluster.madsim_id(from), cluster.madsim_id(to));
        net.clog_link(link.0, link.1);
        self.cut.push(link);
    }

    fn split(&mut self, cluster: &Cluster, net: &NetSim, side: &[usize]) {
        for &inside in side {
            for outside in cluster.members() {
                if !side.contains(&outside) {
                    self.cut_link(cluster, net, inside, outside);
                    self.cut_link(cluster, net, outside, inside);
                }
            }
        }
    }

    fn heal_network(&mut self, net: &NetSim) {
        for (from, to) in self.cut.drain(..) {
            net.unclog_link(from, to);
        }
    }

    pub(crate) async fn step(&mut self, cluster: &mut Cluster, net: &NetSim) {
        let now = Instant::now();
        let due: Vec<usize> = self
            .restarts
            .iter()
            .filter(|(_, at)| *at <= now)
            .map(|(index, _)| *index)
            .collect();
        self.restarts.retain(|(_, at)| *at > now);
        for index in due {
            cluster.restart(index);
        }
        if self.heal_at.is_some_and(|at| at <= now) {
            self.heal_at = None;
            self.heal_network(net);
            for index in self.paused.drain(..) {
                cluster.resume(index);
            }
        }
        if now < self.next_action {
            return;
        }
        let mut rng = thread_rng();
        self.next_action = now + Duration::from_millis(rng.gen_range(200..1500));
        let Some(&class) = self.classes.choose(&mut rng) else {
            return;
        };
        let hold = Duration::from_millis(rng.gen_range(300..3000));
        let running = Nemesis::running_members(cluster);
        match class {
            FaultClass::Partition | FaultClass::OneWay | FaultClass::LeaderIsolation
                if self.heal_at.is_some() => {}
            FaultClass::Partition => {
                let mut members = cluster.members();
                members.shuffle(&mut rng);
                let minority = rng.gen_range(1..=members.len() / 2);
                self.split(cluster, net, &members[..minority]);
                self.heal_at = Some(now + hold);
            }
            FaultClass::OneWay => {
                let members = cluster.members();
                for _ in 0..rng.gen_range(1..=members.len()) {
                    let from = members[rng.gen_range(0..members.len())];
                    let to = members[rng.gen_range(0..members.len())];
                    if from != to {
                        self.cut_link(cluster, net, from, to);
                    }
                }
                self.heal_at = Some(now + hold);
            }
            FaultClass::LeaderIsolation => {
                if let Some(leader) = Nemesis::leader(cluster) {
                    self.split(cluster, net, &[leader]);
                    self.heal_at = Some(now + hold);
                }
            }
            FaultClass::Lossy => {
                let loss = rng.gen_range(0.0..0.2);
                let spread = Duration::from_millis(rng.gen_range(5..200));
                net.update_config(|config| {
                    config.packet_loss_rate = loss;
                    config.send_latency = Duration::from_millis(1)..spread;
                });
            }
            FaultClass::Crash if rng.gen_bool(0.15) => {
                // A correlated failure (a rack losing power): every running member at once.
                for &victim in &running {
                    cluster.crash(victim, rng.gen_bool(0.5));
                    self.restarts.push((
                        victim,
                        now + Duration::from_millis(rng.gen_range(100..2000)),
                    ));
                }
            }
            FaultClass::Crash => {
                // Keep a majority up most of the time, but sometimes take down more.
                if let Some(&victim) = running.choose(&mut rng)
                    && (running.len() * 2 > cluster.members().len() + 1 || rng.gen_bool(0.2))
                {
                    cluster.crash(victim, rng.gen_bool(0.5));
                    self.restarts.push((
                        victim,
                        now + Duration::from_millis(rng.gen_range(100..3000)),
                    ));
                }
            }
            FaultClass::Pause => {
                if self.heal_at.is_none()
                    && let Some(&victim) = running.choose(&mut rng)
                {
                    cluster.pause(victim);
                    self.paused.push(victim);
                    self.heal_at = Some(now + hold);
                }
            }
            FaultClass::Clock => {
                if let Some(&victim) = running.choose(&mut rng) {
                    set_node_clock(
                        &cluster.nodes[victim].name,
                        NodeClock {
                            offset_nanos: 0,
                            rate: rng.gen_range(0.8..=1.2),
                        },
                    );
                }
            }
            FaultClass::Storage => {
                let rates = if rng.gen_bool(0.5) {
                    FaultRates {
                        write: 0.002,
                        sync: 0.002,
                        read: 0.001,
                    }
                } else {
                    FaultRates::default()
                };
                for node in &cluster.nodes {
                    node.disk().set_faults(rates);
                }
            }
            FaultClass::Membership => self.change_membership(cluster).await,
        }
        self.actions += 1;
        self.coverage.add(Path::Fault(class), 1);
    }

    /// Removes a random member when there are five or more, or half the time when there are
    /// four (through any member, or by its own graceful leave, a leader handing over first),
    /// otherwise adds a fresh node (which the leader catches up by a snapshot once it has
    /// purged its log); now and then a member moves to a new address instead.
    async fn change_membership(&mut self, cluster: &mut Cluster) {
        let members = cluster.members();
        let mut rng = thread_rng();
        if rng.gen_bool(0.2) && Nemesis::addresses_settled(cluster) {
            let moved = members[rng.gen_range(0..members.len())];
            cluster.move_node(moved);
            return;
        }
        if members.len() > 4 || (members.len() == 4 && rng.gen_bool(0.5)) {
            let victim = members[rng.gen_range(0..members.len())];
            let id = cluster.nodes[victim].id();
            if rng.gen_bool(0.5)
                && let Some(db) = cluster.nodes[victim].db()
            {
                // A node that left may keep running outside the cluster until it is retired;
                // one whose leave failed stays a member.
                if db.leave().await == Ok(true) {
                    cluster.retire(victim);
                } else {
                    self.coverage.add(Path::MembershipChangeInterrupted, 1);
                }
                return;
            }
            let via = cluster.nodes[members[rng.gen_range(0..members.len())]]
                .addr
                .clone();
            if crate::admin::remove_peer(&via, id).await.is_ok() {
                cluster.retire(victim);
            } else {
                self.coverage.add(Path::MembershipChangeInterrupted, 1);
            }
        } else {
            let seeds = cluster.member_addrs();
            cluster.add_node(seeds);
        }
    }

    /// Ends every fault: links restored, loss off, paused nodes resumed, crashed nodes
    /// restarted, storage errors off, clocks back to full speed.
    pub(crate) fn heal(&mut self, cluster: &mut Cluster, net: &NetSim) {
        self.heal_network(net);
        net.update_config(|config| {
            config.packet_loss_rate = 0.0;
            config.send_latency = Duration::from_millis(1)..Duration::from_millis(10);
        });
        for index in self.paused.drain(..) {
            cluster.resume(index);
        }
        for (index, _) in self.restarts.drain(..) {
            cluster.restart(index);
        }
        for node in &cluster.nodes {
            node.disk().set_faults(FaultRates::default());
            set_node_clock(
                &node.name,
                NodeClock {
                    offset_nanos: 0,
                    rate: 1.0,
                },
            );
        }
    }
}
