//! The terminal UI's state and its command line, without a terminal: what the panes show, how
//! keys edit the command line and scroll the data, and how a typed line becomes a command.

use std::collections::VecDeque;

use dbadger::{KeyValue, NodeStatus};

use crate::client::bytes::escape;

/// The most log lines the logs pane keeps.
pub(crate) const MAX_LOG_LINES: usize = 500;

/// How many test pairs `testset` writes.
pub(crate) const TEST_PAIRS: usize = 1000;

/// A command typed on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Command {
    /// `set KEY VALUE`.
    Set(String, String),
    /// `del KEY`.
    Del(String),
    /// `get KEY`.
    Get(String),
    /// `testset`: write [`TEST_PAIRS`] test pairs.
    TestSet,
    /// `drop`: delete every key.
    Drop,
    /// `snapshot`.
    Snapshot,
    /// `restore ID`.
    Restore(String),
    /// `help`.
    Help,
    /// `quit` or `exit`.
    Quit,
}

/// The help text shown by `help`.
pub(crate) const HELP: &str = "set KEY VALUE | del KEY | get KEY | testset | drop | snapshot | \
                               restore ID | help | quit (PgUp/PgDn or Up/Down scroll the data)";

/// Parses a command line; `Err` says what is wrong.
pub(crate) fn parse(line: &str) -> Result<Command, String> {
    let mut words = line.split_whitespace();
    let Some(verb) = words.next() else {
        return Err("type a command (help lists them)".to_owned());
    };
    let rest: Vec<&str> = words.collect();
    let one = |name: &str| match rest.as_slice() {
        [word] => Ok((*word).to_owned()),
        _ => Err(format!("usage: {verb} {name}")),
    };
    match verb {
        "set" => match rest.as_slice() {
            [key, value @ ..] if !value.is_empty() => {
                Ok(Command::Set((*key).to_owned(), value.join(" ")))
            }
            _ => Err("usage: set KEY VALUE".to_owned()),
        },
        "del" => one("KEY").map(Command::Del),
        "get" => one("KEY").map(Command::Get),
        "restore" => one("ID").map(Command::Restore),
        "testset" | "drop" | "snapshot" | "help" | "quit" | "exit" if !rest.is_empty() => {
            Err(format!("{verb} takes no arguments"))
        }
        "testset" => Ok(Command::TestSet),
        "drop" => Ok(Command::Drop),
        "snapshot" => Ok(Command::Snapshot),
        "help" => Ok(Command::Help),
        "quit" | "exit" => Ok(Command::Quit),
        other => Err(format!("unknown command {other:?} (help lists them)")),
    }
}

/// Everything the UI shows.
#[derive(Debug, Default)]
pub(crate) struct App {
    /// The command line being typed.
    pub(crate) input: String,
    /// The answer to the last command.
    pub(crate) message: String,
    /// The entries the data pane shows (the first ones in key order), and how many keys exist
    /// in all when known.
    pub(crate) entries: Vec<KeyValue>,
    /// Whether there are more keys than `entries`.
    pub(crate) more_entries: bool,
    /// The first entry shown.
    pub(crate) scroll: usize,
    /// This node's view of the cluster.
    pub(crate) status: Option<NodeStatus>,
    /// This node's address.
    pub(crate) addr: String,
    /// The last log lines, oldest first.
    pub(crate) logs: VecDeque<String>,
    /// Set by `quit`.
    pub(crate) quitting: bool,
}

impl App {
    /// Scrolls the data pane by `delta` entries, within the entries.
    pub(crate) fn scroll_by(&mut self, delta: isize) {
        let last = self.entries.len().saturating_sub(1);
        self.scroll = self.scroll.saturating_add_signed(delta).min(last);
    }

    /// Adds a log line, dropping the oldest past [`MAX_LOG_LINES`].
    pub(crate) fn log(&mut self, line: String) {
        if self.logs.len() == MAX_LOG_LINES {
            self.logs.pop_front();
        }
        self.logs.push_back(line);
    }

    /// Takes the typed line (clearing the command line) and parses it.
    pub(crate) fn submit(&mut self) -> Option<Command> {
        let line = std::mem::take(&mut self.input);
        match parse(&line) {
            Ok(Command::Help) => {
                self.message = HELP.to_owned();
                None
            }
            Ok(Command::Quit) => {
                self.quitting = true;
                None
            }
            Ok(command) => Some(command),
            Err(message) => {
                self.message = message;
                None
            }
        }
    }

    /// The data pane's rows: key, value and revision, escaped for the terminal.
    pub(crate) fn rows(&self) -> impl Iterator<Item = (String, String, u64)> + '_ {
        self.entries
            .iter()
            .skip(self.scroll)
            .map(|entry| (escape(&entry.key), escape(&entry.value), entry.revision))
    }

    /// The nodes pane's rows: id, address, role, the leader marked, and what this node knows of
    /// each one's progress (its own applied index; on the leader, each follower's matched
    /// index and its lag behind the leader's log).
    pub(crate) fn node_rows(&self) -> Vec<String> {
        let Some(status) = &self.status else {
            return Vec::new();
        };
        let leader = status.leader.as_ref().map(|(id, _)| *id);
        status
            .members
            .iter()
            .map(|(id, addr, voter)| {
                let mark = if Some(*id) == leader { "*" } else { " " };
                let role = if *voter { "voter" } else { "learner" };
                let progress = if *id == status.id {
                    format!("applied {}", status.applied_index)
                } else {
                    match status.replication.iter().find(|(member, _)| member == id) {
                        Some((_, Some(matched))) => format!(
                            "matched {matched} lag {}",
                            status.last_log_index.saturating_sub(*matched)
                        ),
                        Some((_, None)) => "not answering".to_owned(),
                        None => "-".to_owned(),
                    }
                };
                format!("{mark} {id} {addr} {role} {progress}")
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command parses; wrong argument counts and unknown verbs say what is wrong.
    #[test]
    fn commands_parse() {
        assert_eq!(
            parse("set k hello world"),
            Ok(Command::Set("k".into(), "hello world".into()))
        );
        assert_eq!(parse("del k"), Ok(Command::Del("k".into())));
        assert_eq!(parse("get k"), Ok(Command::Get("k".into())));
        assert_eq!(parse(" testset "), Ok(Command::TestSet));
        assert_eq!(parse("drop"), Ok(Command::Drop));
        assert_eq!(parse("snapshot"), Ok(Command::Snapshot));
        assert_eq!(parse("restore 7"), Ok(Command::Restore("7".into())));
        assert_eq!(parse("exit"), Ok(Command::Quit));
        assert!(parse("set k").is_err());
        assert!(parse("get").is_err());
        assert!(parse("drop all").is_err());
        assert!(parse("frobnicate").is_err());
        assert!(parse("").is_err());
    }

    /// The log keeps the newest lines only; scrolling stays within the entries.
    #[test]
    fn logs_are_bounded_and_scrolling_is_clamped() {
        let mut app = App::default();
        for i in 0..MAX_LOG_LINES + 10 {
            app.log(format!("line {i}"));
        }
        assert_eq!(app.logs.len(), MAX_LOG_LINES);
        assert_eq!(app.logs.front().map(String::as_str), Some("line 10"));
        app.entries = (0..3)
            .map(|i| KeyValue {
                key: vec![b'a' + i],
                value: vec![],
                revision: 1,
            })
            .collect();
        app.scroll_by(10);
        assert_eq!(app.scroll, 2);
        app.scroll_by(-10);
        assert_eq!(app.scroll, 0);
    }
}
