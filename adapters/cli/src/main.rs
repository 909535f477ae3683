//! The `dbadger` binary.
//!
//! `dbadger node ...` runs a node: it logs to stderr and stops gracefully on SIGINT or SIGTERM.
//! The terminal UI and the etcdctl-style client commands (`get`, `put`, `del`, ...) come later;
//! until then `--headless` is implied.

mod node;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// dbadger: a distributed, embeddable key-value database.
#[derive(Debug, Parser)]
#[command(name = "dbadger", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// Run a node.
    Node(node::NodeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Commands::Node(args) => node::run(args),
    }
}
