//! The client commands, in the style of etcdctl: `get`, `put`, `del`, `cas`, `status`,
//! `members`, `snapshot`, `recover`. Each talks to the nodes named by `--endpoints` over gRPC
//! (mutual TLS with `--ca --cert --key`), moving on to the next endpoint when one cannot serve
//! the request and may safely be skipped (`failover.rs`), and ends with a documented exit code
//! (`exit.rs`).

pub(crate) mod bytes;
pub(crate) mod cluster;
mod duration;
mod endpoints;
pub(crate) mod exit;
mod failover;
pub(crate) mod kv;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};

pub(crate) use endpoints::Endpoints;
pub(crate) use exit::Exit;
pub(crate) use failover::Effect;
pub(crate) use output::Output;

use self::bytes::Encoding;

/// Where reads are served.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReadFrom {
    /// Linearizable: confirmed by the leader (the default).
    Leader,
    /// The answering node's own applied state: fast, possibly stale.
    Local,
}

/// How answers are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// For people.
    Text,
    /// One JSON object per line, with revisions.
    Json,
}

/// The flags every client command takes.
#[derive(Clone, Debug, Args)]
pub(crate) struct ClientArgs {
    /// Nodes to talk to (host:port), tried in order; comma-separated or repeated.
    #[arg(
        long,
        global = true,
        env = "DBADGER_ENDPOINTS",
        value_delimiter = ',',
        default_value = "127.0.0.1:7400"
    )]
    endpoints: Vec<String>,
    /// Serve reads from the leader (linearizable) or from the answering node (local).
    #[arg(
        long,
        global = true,
        value_enum,
        env = "DBADGER_READ",
        default_value = "leader"
    )]
    read: ReadFrom,
    /// Cluster CA certificate (PEM) for mutual TLS.
    #[arg(long, id = "tls_ca", global = true, env = "DBADGER_CA", requires_all = ["tls_cert", "tls_key"])]
    ca: Option<PathBuf>,
    /// Client certificate (PEM), signed by the cluster CA.
    #[arg(long, id = "tls_cert", global = true, env = "DBADGER_CERT", requires_all = ["tls_ca", "tls_key"])]
    cert: Option<PathBuf>,
    /// Client private key (PEM).
    #[arg(long = "key", id = "tls_key", global = true, env = "DBADGER_KEY", requires_all = ["tls_ca", "tls_cert"])]
    key: Option<PathBuf>,
    /// The whole command's deadline, over every endpoint tried: 500ms, 5s, 2m.
    #[arg(long, global = true, env = "DBADGER_TIMEOUT", default_value = "5s", value_parser = duration::parse_timeout)]
    timeout: Duration,
    /// Output format.
    #[arg(
        long,
        global = true,
        value_enum,
        env = "DBADGER_OUTPUT",
        default_value = "text"
    )]
    output: OutputFormat,
    /// Keys and values are hexadecimal, in the arguments and in the output.
    #[arg(long, global = true)]
    hex: bool,
}

impl ClientArgs {
    fn encoding(&self) -> Encoding {
        if self.hex {
            Encoding::Hex
        } else {
            Encoding::Text
        }
    }

    /// The wire read preference.
    pub(crate) fn read_preference(&self) -> i32 {
        match self.read {
            ReadFrom::Leader => dbadger_proto::v1::ReadPreference::Leader as i32,
            ReadFrom::Local => dbadger_proto::v1::ReadPreference::Local as i32,
        }
    }

    /// The bytes an argument stands for.
    pub(crate) fn bytes(&self, argument: &str) -> Result<Vec<u8>, Failure> {
        self.encoding().parse(argument).map_err(Failure::usage)
    }
}

/// Why a client command did not succeed: the exit code and what to tell the user.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) exit: Exit,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn usage(message: impl Into<String>) -> Failure {
        Failure {
            exit: Exit::Usage,
            message: message.into(),
        }
    }

    pub(crate) fn other(message: impl Into<String>) -> Failure {
        Failure {
            exit: Exit::Other,
            message: message.into(),
        }
    }
}

/// Runs one client command on a fresh single-threaded runtime and turns its result into the
/// exit code, printing a failure's message on stderr.
pub(crate) fn run<F, Fut>(args: &ClientArgs, command: F) -> ExitCode
where
    F: FnOnce(Endpoints, Output) -> Fut,
    Fut: Future<Output = Result<Exit, Failure>>,
{
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("dbadger: cannot start the async runtime: {error}");
            return Exit::Other.into();
        }
    };
    let result = runtime.block_on(async {
        let endpoints = Endpoints::new(args)?;
        command(endpoints, Output::new(args.output, args.encoding())).await
    });
    match result {
        Ok(exit) => exit.into(),
        Err(failure) => {
            eprintln!("dbadger: {}", failure.message);
            failure.exit.into()
        }
    }
}
