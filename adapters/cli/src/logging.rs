//! The node's log: quiet by default (dbadger's own events at info, everything else, openraft
//! included, at warn), filtered like `RUST_LOG` when that variable is set, as text or as JSON
//! lines.

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per event.
    Json,
}

/// The filter when `RUST_LOG` is not set.
pub(crate) const DEFAULT_FILTER: &str =
    "warn,dbadger=info,dbadger_cli=info,dbadger_grpc=info,dbadger_lmdb=info,dbadger_core=info";

/// The filter: `RUST_LOG` if set and valid, else [`DEFAULT_FILTER`].
fn filter() -> EnvFilter {
    match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => EnvFilter::try_new(&directives)
            .unwrap_or_else(|error| {
                eprintln!("dbadger: RUST_LOG={directives:?} is not a valid filter ({error}); using the default");
                EnvFilter::new(DEFAULT_FILTER)
            }),
        _ => EnvFilter::new(DEFAULT_FILTER),
    }
}

/// Installs the log on stderr.
pub(crate) fn init(format: LogFormat) {
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
