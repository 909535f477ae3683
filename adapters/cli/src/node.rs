//! `dbadger node`: run one node until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use dbadger::{Config, Db, PemSource, StartMode, TlsConfig};

use crate::logging::{self, CapturedLog, LogFormat};

/// The flags of `dbadger node`, each also settable through the environment variable named in
/// its help.
#[derive(Debug, Args)]
pub(crate) struct NodeArgs {
    /// Data directory (LMDB environment and snapshots).
    #[arg(long = "db", env = "DBADGER_DB", default_value = "dbadger-data")]
    data_dir: PathBuf,
    /// Address to listen on (Raft, client gRPC, metrics), host:port.
    #[arg(long, env = "DBADGER_BIND", default_value = "127.0.0.1:7400")]
    bind: String,
    /// Address other nodes use to reach this one, if not the bind address.
    #[arg(long, env = "DBADGER_ADVERTISE")]
    advertise: Option<String>,
    /// Create a new one-node cluster (ignored when the data directory already holds one).
    #[arg(long, env = "DBADGER_BOOTSTRAP")]
    bootstrap: bool,
    /// Join the cluster through this member (repeatable, or comma-separated).
    #[arg(
        long = "join",
        value_name = "ADDR",
        env = "DBADGER_JOIN",
        value_delimiter = ','
    )]
    join: Vec<String>,
    /// Turn this node's data into a new one-node cluster after losing the others (refused
    /// while enough of the old voters answer to form a quorum, unless --force).
    #[arg(long, env = "DBADGER_RECOVER")]
    recover: bool,
    /// With --recover: recover even though a quorum of the old cluster answers (those nodes
    /// must then be stopped and wiped).
    #[arg(long, requires = "recover", env = "DBADGER_FORCE_RECOVER")]
    force: bool,
    /// Cluster CA certificate (PEM) for mutual TLS.
    #[arg(long, env = "DBADGER_CA", requires_all = ["cert", "key"])]
    ca: Option<PathBuf>,
    /// This node's certificate (PEM).
    #[arg(long, env = "DBADGER_CERT", requires_all = ["ca", "key"])]
    cert: Option<PathBuf>,
    /// This node's private key (PEM).
    #[arg(long, env = "DBADGER_KEY", requires_all = ["ca", "cert"])]
    key: Option<PathBuf>,
    /// With --bootstrap on a new data directory: start the new cluster with the state of this
    /// snapshot file (saved with `dbadger snapshot save` from any cluster).
    #[arg(
        long = "restore",
        value_name = "FILE",
        requires = "bootstrap",
        env = "DBADGER_RESTORE"
    )]
    restore_from: Option<PathBuf>,
    /// Stay a member when stopped (a restart on the same data then resumes its membership);
    /// by default a stopped node leaves the cluster, and rejoins only with --join, as a new
    /// node.
    #[arg(long = "no-leave", env = "DBADGER_NO_LEAVE")]
    no_leave: bool,
    /// Keep everything in memory: no files, nothing survives the process.
    #[arg(long = "in-memory", visible_alias = "inmem", env = "DBADGER_IN_MEMORY")]
    in_memory: bool,
    /// Log to stderr instead of showing the terminal UI.
    #[arg(long, env = "DBADGER_HEADLESS")]
    headless: bool,
    /// Log lines as text or JSON (filter them with RUST_LOG, e.g. RUST_LOG=debug).
    #[arg(long, value_enum, env = "DBADGER_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
}

impl NodeArgs {
    fn config(&self) -> Result<Config, String> {
        let start = StartMode::from_flags(self.bootstrap, self.join.clone(), self.recover)
            .map_err(|e| e.to_string())?;
        let tls = match (&self.ca, &self.cert, &self.key) {
            (Some(ca), Some(cert), Some(key)) => Some(TlsConfig {
                ca: PemSource::Path(ca.clone()),
                cert: PemSource::Path(cert.clone()),
                key: PemSource::Path(key.clone()),
            }),
            _ => None,
        };
        Ok(Config {
            tls,
            bind: self.bind.clone(),
            advertise: self.advertise.clone(),
            data_dir: self.data_dir.clone(),
            in_memory: self.in_memory,
            start,
            leave_on_stop: !self.no_leave,
            restore_from: self.restore_from.clone(),
            force_recover: self.force,
            ..Config::default()
        })
    }
}

pub(crate) fn run(args: NodeArgs) -> ExitCode {
    use std::io::IsTerminal;
    let interactive =
        !args.headless && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let ui_log = if interactive {
        Some(logging::init_captured(args.log_format))
    } else {
        logging::init(args.log_format);
        None
    };
    let config = match args.config() {
        Ok(config) => config,
        Err(message) => {
            report(ui_log.is_some(), &message);
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            report(
                ui_log.is_some(),
                &format!("cannot start the async runtime: {error}"),
            );
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(config, ui_log))
}

/// Logs an error; with the terminal UI (whose log is in memory) also prints it on stderr, so
/// that a node that could not start says why.
fn report(interactive: bool, message: &str) {
    tracing::error!("{message}");
    if interactive {
        eprintln!("dbadger: {message}");
    }
}

async fn serve(config: Config, ui_log: Option<CapturedLog>) -> ExitCode {
    // Handlers first: a signal that arrives as soon as "node started" is printed must stop the
    // node gracefully, not kill the process with the default action.
    let signals = match StopSignals::install() {
        Ok(signals) => signals,
        Err(error) => {
            report(
                ui_log.is_some(),
                &format!("cannot handle SIGINT and SIGTERM: {error}"),
            );
            return ExitCode::FAILURE;
        }
    };
    let db = match Db::start(config).await {
        Ok(db) => db,
        Err(error) => {
            report(ui_log.is_some(), &format!("node did not start: {error}"));
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(id = db.id(), addr = db.addr(), "node started");
    let mut exit = ExitCode::SUCCESS;
    match &ui_log {
        Some(log) => {
            let stopped = async {
                let signal = signals.next().await;
                tracing::info!("{signal}: stopping");
            };
            if let Err(error) = crate::tui::run(&db, log, stopped).await {
                eprintln!("dbadger: the terminal UI failed: {error}");
                exit = ExitCode::FAILURE;
            }
        }
        None => {
            let signal = signals.next().await;
            tracing::info!("{signal}: stopping");
        }
    }
    db.close().await;
    tracing::info!("node stopped");
    exit
}

/// The signals that stop the node, listened to from installation on.
struct StopSignals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> std::io::Result<StopSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// Resolves on SIGINT or SIGTERM, naming the signal.
    async fn next(mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}
