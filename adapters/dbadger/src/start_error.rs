//! [`StartError`]: why a node could not start.

use dbadger_core::{ConfigError, RequestError, StorageError};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration breaks a rule.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// The data directory could not be opened.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// openraft refused to start.
    #[error("raft: {0}")]
    Raft(String),
    /// The TLS material could not be read or used.
    #[error("TLS: {0}")]
    Tls(String),
    /// The node left its cluster (its data directory says so) and was not started with
    /// `StartMode::Join`.
    #[error("{0}")]
    Left(String),
    /// Recovering the node into a new cluster was refused or failed; its data is unchanged
    /// unless the message says otherwise.
    #[error("recovery: {0}")]
    Recover(String),
    /// The snapshot a new cluster was to start from could not be restored.
    #[error("restoring the snapshot failed: {0}")]
    Restore(RequestError),
    /// Joining the cluster failed.
    #[error("joining the cluster failed: {0}")]
    Join(RequestError),
}
