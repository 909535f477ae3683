//! The terminal UI of `dbadger node` (ratatui + crossterm), shown on a terminal unless
//! `--headless`: panes for the data (keys, values, revisions), the nodes (leader marked, each
//! node's progress), this node's stats and its logs, and a command line with set, del, get,
//! testset, drop, snapshot, restore and help, like DBadger's example CLI.
//!
//! `app.rs` holds the state and the command line (pure), `view.rs` draws it (tested on
//! ratatui's `TestBackend`), `run.rs` drives a real terminal.

mod app;
mod run;
mod view;

pub(crate) use run::run;
