//! openraft's storage traits, implemented once over dbadger's storage traits.
//!
//! [`RaftLog`] implements `RaftLogStorage` and `RaftLogReader` over any [`LogStore`];
//! [`RaftStateMachineStore`] implements `RaftStateMachine` and `RaftSnapshotBuilder` over any
//! [`StateMachineStore`]. Both are generic over the async runtime through
//! [`crate::raft_types::RaftTypes`], and both are cheap handles (an `Arc`) that openraft may
//! clone into its tasks.
//!
//! Store calls are synchronous: they run on the calling task. A store whose writes block on
//! disk should keep them short (LMDB commits in microseconds to a millisecond) or move the
//! flush off the task and report it through the append callback.
//!
//! [`LogStore`]: crate::storage::LogStore
//! [`StateMachineStore`]: crate::storage::StateMachineStore

mod log;
mod state_machine;

pub use log::RaftLog;
pub use state_machine::{BlockingSection, RaftStateMachineStore, run_in_place};
