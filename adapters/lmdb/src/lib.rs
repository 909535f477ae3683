//! LMDB storage for dbadger, through heed.
//!
//! This crate owns everything dbadger keeps on disk: one LMDB environment per node data
//! directory holding the Raft log, the durable vote, the key-value data with per-key revisions,
//! the state-machine metadata (applied log id and membership) and snapshot files. It implements
//! the storage traits of [`dbadger_core::storage`]; Raft storage semantics themselves live in
//! `dbadger-core` and are not re-implemented here.
//!
//! Status: the implementation lands with the LMDB storage issue; until then the node runs on the
//! in-memory reference store of `dbadger-core`.
