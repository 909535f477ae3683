//! The `dbadger` binary.
//!
//! - `dbadger node ...` runs a node: on a terminal it shows the terminal UI, with `--headless`
//!   (or without a terminal) it logs to stderr; SIGINT or SIGTERM stop it gracefully.
//! - `dbadger get|put|del|cas|status|members|snapshot|recover ...` are client commands in the
//!   style of etcdctl, talking to the nodes named by `--endpoints`.
//! - `dbadger certs` writes a test certificate authority and certificates for mutual TLS.
//!
//! Exit codes of the client commands: 0 success, 1 other error, 2 usage error, 3 not found,
//! 4 compare-and-set failed, 5 unavailable.

mod certs;
mod client;
mod logging;
mod node;
mod tui;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use client::{cluster, kv};

/// dbadger: a distributed, embeddable key-value database.
#[derive(Debug, Parser)]
#[command(name = "dbadger", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// Run a node.
    Node(node::NodeArgs),
    /// Read a key, a prefix (--prefix) or an inclusive range (FROM TO).
    Get(kv::GetArgs),
    /// Write a value (from the argument, or stdin).
    Put(kv::PutArgs),
    /// Delete a key, a prefix (--prefix) or an inclusive range (FROM TO); prints the count.
    Del(kv::DelArgs),
    /// Compare-and-set: change a key only if it holds a value, a revision, or nothing.
    Cas(kv::CasArgs),
    /// Each endpoint's view of the cluster.
    Status(cluster::StatusArgs),
    /// List, add, remove or promote members.
    Members(cluster::MembersArgs),
    /// List, save or restore snapshots.
    Snapshot(cluster::SnapshotArgs),
    /// How to recover a cluster from a single survivor (`dbadger node --recover`).
    Recover(cluster::RecoverArgs),
    /// Write a test CA and node certificates for mutual TLS.
    Certs(certs::CertsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Commands::Node(args) => node::run(args),
        Commands::Get(args) => {
            let client = args.client.clone();
            client::run(&client, |endpoints, output| {
                kv::get(args, endpoints, output)
            })
        }
        Commands::Put(args) => {
            let client = args.client.clone();
            client::run(&client, |endpoints, output| {
                kv::put(args, endpoints, output)
            })
        }
        Commands::Del(args) => {
            let client = args.client.clone();
            client::run(&client, |endpoints, output| {
                kv::del(args, endpoints, output)
            })
        }
        Commands::Cas(args) => {
            let client = args.client.clone();
            client::run(&client, |endpoints, output| {
                kv::cas(args, endpoints, output)
            })
        }
        Commands::Status(args) => client::run(&args.client, cluster::status),
        Commands::Members(args) => {
            let client = args.client.clone();
            client::run(&client, |endpoints, output| {
                cluster::members(args, endpoints, output)
            })
        }
        Commands::Snapshot(args) => {
            let client = args.client.clone();
            client::run(&client, |endpoints, output| {
                cluster::snapshot(args, endpoints, output)
            })
        }
        Commands::Recover(args) => client::run(&args.client, |_, _| async { cluster::recover() }),
        Commands::Certs(args) => certs::run(args),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Cli;

    /// The arguments of a README shell line that runs dbadger, if it does.
    fn dbadger_arguments(line: &str) -> Option<Vec<&str>> {
        let line = line.trim().trim_end_matches('&').trim();
        // `echo ... | dbadger put note`: the command after the pipe.
        let line = line.rsplit("| ").next()?;
        let arguments = match line.split_once(" -- ") {
            Some((cargo, arguments)) if cargo.starts_with("cargo run") => arguments,
            _ => line.strip_prefix("dbadger ")?,
        };
        Some(arguments.split_whitespace().collect())
    }

    /// Every dbadger command the README shows parses with the flags this binary has, so the
    /// README cannot drift from the binary (what the commands do is tested in tests/).
    #[test]
    fn the_readme_commands_parse() {
        let readme = include_str!("../../../README.md");
        let mut in_shell_block = false;
        let mut checked = 0;
        for line in readme.lines() {
            if let Some(fence) = line.strip_prefix("```") {
                in_shell_block = fence == "sh";
                continue;
            }
            let Some(arguments) = in_shell_block.then(|| dbadger_arguments(line)).flatten() else {
                continue;
            };
            let parsed = Cli::try_parse_from(std::iter::once("dbadger").chain(arguments));
            assert!(parsed.is_ok(), "README line {line:?}: {parsed:?}");
            checked += 1;
        }
        assert!(checked >= 25, "only {checked} README commands found");
    }
}
