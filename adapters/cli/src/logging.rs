//! The node's log: quiet by default (dbadger's own events at info, everything else, openraft
//! included, at warn), filtered like `RUST_LOG` when that variable is set, as text or as JSON
//! lines.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex};

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per event.
    Json,
}

/// The filter when `RUST_LOG` is not set.
///
/// openraft's replication, heartbeat and vote warnings repeat for every failed attempt to reach
/// a peer (thousands per minute while a follower is down); they are kept at error. The
/// transport logs each peer's changes instead ("peer unreachable; retrying with backoff",
/// "peer reachable again"), and the node its role changes (`dbadger::role`).
pub(crate) const DEFAULT_FILTER: &str = "warn,openraft::replication=error,\
     openraft::engine::handler::replication_handler=error,openraft::core::heartbeat=error,\
     openraft::core::raft_core=error,\
     dbadger=info,dbadger_cli=info,\
     dbadger_grpc=info,dbadger_lmdb=info,dbadger_core=info";

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

/// The most lines the captured log holds before the oldest are dropped (the terminal UI drains
/// it four times a second).
const CAPTURE_LINES: usize = 1000;

/// Log lines kept in memory for the terminal UI's logs pane instead of written to stderr.
#[derive(Clone, Debug, Default)]
pub(crate) struct CapturedLog {
    lines: Arc<Mutex<VecDeque<String>>>,
}

impl CapturedLog {
    /// Takes the lines logged since the last call.
    pub(crate) fn drain(&self) -> Vec<String> {
        self.lines
            .lock()
            .map(|mut lines| lines.drain(..).collect())
            .unwrap_or_default()
    }

    fn push(&self, line: &str) {
        if let Ok(mut lines) = self.lines.lock() {
            if lines.len() == CAPTURE_LINES {
                lines.pop_front();
            }
            lines.push_back(line.trim_end().to_owned());
        }
    }
}

/// One event's formatted bytes, pushed as lines when the event is done.
pub(crate) struct CapturedEvent {
    log: CapturedLog,
    bytes: Vec<u8>,
}

impl io::Write for CapturedEvent {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.bytes.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for CapturedEvent {
    fn drop(&mut self) {
        for line in String::from_utf8_lossy(&self.bytes).lines() {
            self.log.push(line);
        }
    }
}

impl<'a> MakeWriter<'a> for CapturedLog {
    type Writer = CapturedEvent;

    fn make_writer(&'a self) -> CapturedEvent {
        CapturedEvent {
            log: self.clone(),
            bytes: Vec::new(),
        }
    }
}

/// Installs the log into memory, for the terminal UI; returns where the lines go.
pub(crate) fn init_captured(format: LogFormat) -> CapturedLog {
    let log = CapturedLog::default();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_ansi(false)
        .with_writer(log.clone());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    log
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured events come out as lines, the oldest dropped past the bound.
    #[test]
    fn captured_lines_are_bounded() {
        use std::io::Write;
        let log = CapturedLog::default();
        for i in 0..CAPTURE_LINES + 5 {
            let mut event = log.make_writer();
            let _ = writeln!(event, "event {i}");
        }
        let lines = log.drain();
        assert_eq!(lines.len(), CAPTURE_LINES);
        assert_eq!(lines.first().map(String::as_str), Some("event 5"));
        assert!(log.drain().is_empty());
    }
}
