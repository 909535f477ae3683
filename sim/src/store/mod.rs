//! The simulator store: the core storage traits over an in-memory "disk" that the harness
//! holds, so it outlives the node, and that models durability.
//!
//! Every change a node makes is visible to it at once (the page cache) and queued as pending;
//! pending changes become durable, in order, when a sync runs. A sync is scheduled after each
//! append with a random latency, and votes and snapshots sync everything before they return,
//! as their contracts demand. At a crash ([`SimDisk::crash`]) the pending queue is lost,
//! optionally except a prefix of it (a torn write: the disk got part of the way). State-machine
//! commits share the queue, so they are durable exactly when a later log sync is. The LMDB
//! store promises less since its state machine has its own environment (a commit's meta page
//! is flushed only by a later state-machine commit or a snapshot's record; recovered by log
//! replay either way): this model loses fewer applied transactions at a crash than LMDB may.
//!
//! Observers ([`DiskObserver`]): a disk attached to one is told of every vote, committed index,
//! truncation and state-machine commit as it happens, for invariant checks at every step.
//!
//! Faults: write, sync and read errors at seeded rates ([`FaultRates`]). A failed operation
//! returns [`StorageError::Injected`](dbadger_core::StorageError::Injected) and marks the disk
//! failed; openraft treats storage errors as fatal, and the harness restarts a node whose disk
//! failed, as a supervisor restarts a crashed process.

mod disk;
mod log;
mod observer;
mod state_machine;

pub use disk::{FaultRates, SimDisk, SyncPolicy};
pub use log::SimLogStore;
pub use observer::DiskObserver;
pub use state_machine::{SimStateMachine, SimWrite};
