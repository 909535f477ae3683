//! Drawing the terminal UI: the data pane (keys, values, revisions) on the left, the nodes
//! and this node's stats on the right, the logs below, and the command line at the bottom.
//! The layout follows the frame's size on every draw, so a resize redraws to fit.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table};

use super::app::App;

/// Draws the whole UI into `frame`.
pub(crate) fn draw(frame: &mut Frame<'_>, app: &App) {
    let [top, logs, message, input] = Layout::vertical([
        Constraint::Min(6),
        Constraint::Length(8),
        Constraint::Length(1),
        Constraint::Length(3),
    ])
    .areas(frame.area());
    let [data, side] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(top);
    let [nodes, stats] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(side);
    draw_data(frame, app, data);
    draw_lines(frame, "Nodes (* leader)", &app.node_rows(), nodes);
    draw_lines(frame, "Node stats", &stat_lines(app), stats);
    let log_lines: Vec<String> = app
        .logs
        .iter()
        .rev()
        .take(usize::from(logs.height.saturating_sub(2)))
        .rev()
        .cloned()
        .collect();
    draw_lines(frame, "Logs", &log_lines, logs);
    frame.render_widget(Paragraph::new(app.message.as_str()), message);
    frame.render_widget(
        Paragraph::new(format!("> {}", app.input)).block(
            Block::default()
                .borders(Borders::ALL)
                .title("Command (help lists them)"),
        ),
        input,
    );
}

fn draw_data(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let rows = app
        .rows()
        .map(|(key, value, revision)| Row::new([key, value, revision.to_string()]));
    let count = app.entries.len();
    let title = match (app.more_entries, count) {
        (true, _) => format!("Data: the first {count} keys"),
        (false, 1) => "Data: 1 key".to_owned(),
        (false, _) => format!("Data: {count} keys"),
    };
    let table = Table::new(
        rows,
        [
            Constraint::Percentage(35),
            Constraint::Percentage(50),
            Constraint::Percentage(15),
        ],
    )
    .header(
        Row::new(["Key", "Value", "Revision"]).style(Style::default().add_modifier(Modifier::BOLD)),
    )
    .block(Block::default().borders(Borders::ALL).title(title));
    frame.render_widget(table, area);
}

fn draw_lines(frame: &mut Frame<'_>, title: &str, lines: &[String], area: Rect) {
    let text: Vec<Line<'_>> = lines.iter().map(|line| Line::from(line.as_str())).collect();
    frame.render_widget(
        Paragraph::new(text).block(
            Block::default()
                .borders(Borders::ALL)
                .title(title.to_owned()),
        ),
        area,
    );
}

fn stat_lines(app: &App) -> Vec<String> {
    let Some(status) = &app.status else {
        return vec!["starting".to_owned()];
    };
    vec![
        format!("id {} at {}", status.id, app.addr),
        format!("state {}  term {}", status.state, status.term),
        format!(
            "applied {}  committed {}  last log {}",
            status.applied_index, status.committed_index, status.last_log_index
        ),
        format!(
            "snapshot {}  purged {}",
            status.snapshot_index, status.purged_index
        ),
        format!("ready {}", if status.is_ready() { "yes" } else { "no" }),
    ]
}

#[cfg(test)]
mod tests {
    use dbadger::{KeyValue, NodeStatus};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;

    fn screen(app: &App, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("terminal");
        terminal.draw(|frame| draw(frame, app)).expect("draw");
        let buffer = terminal.backend().buffer();
        let mut text = String::new();
        for y in 0..buffer.area.height {
            for x in 0..buffer.area.width {
                text.push_str(buffer[(x, y)].symbol());
            }
            text.push('\n');
        }
        text
    }

    fn app() -> App {
        let mut app = App {
            addr: "127.0.0.1:7400".to_owned(),
            input: "set gre".to_owned(),
            message: "OK revision 12".to_owned(),
            ..App::default()
        };
        app.entries = vec![
            KeyValue {
                key: b"alpha".to_vec(),
                value: b"one".to_vec(),
                revision: 3,
            },
            KeyValue {
                key: b"beta".to_vec(),
                value: b"two\n".to_vec(),
                revision: 11,
            },
        ];
        app.status = Some(NodeStatus {
            id: 7,
            leader: Some((7, "127.0.0.1:7400".to_owned())),
            members: vec![
                (7, "127.0.0.1:7400".to_owned(), true),
                (9, "127.0.0.1:7401".to_owned(), true),
            ],
            term: 2,
            committed_index: 12,
            applied_index: 12,
            last_log_index: 12,
            snapshot_index: 0,
            purged_index: 0,
            is_leader: true,
            state: "leader",
            replication: vec![(9, Some(10))],
            failure: None,
            cluster_id: 0,
            caught_up: true,
        });
        app.log("node started".to_owned());
        app
    }

    /// Every pane shows what the state holds: entries with revisions (escaped), the leader
    /// marked with each node's progress and lag, the stats, the logs, the message and the
    /// command being typed.
    #[test]
    fn every_pane_shows_its_state() {
        let text = screen(&app(), 120, 30);
        for wanted in [
            "alpha",
            "one",
            "beta",
            "two\\x0a",
            "Revision",
            "11",
            "* 7 127.0.0.1:7400 voter applied 12",
            "9 127.0.0.1:7401 voter matched 10 lag 2",
            "state leader  term 2",
            "node started",
            "OK revision 12",
            "> set gre",
        ] {
            assert!(text.contains(wanted), "{wanted:?} missing from\n{text}");
        }
    }

    /// A smaller terminal gets the same panes, fitted: a resize redraws to the new size.
    #[test]
    fn a_resize_redraws_to_fit() {
        let small = screen(&app(), 70, 24);
        assert!(small.contains("Data") && small.contains("Nodes") && small.contains("Logs"));
        assert_eq!(small.lines().count(), 24);
        assert!(small.lines().all(|line| line.chars().count() == 70));
    }

    /// The data pane's title counts its keys in words that read right.
    #[test]
    fn the_data_title_counts_keys() {
        let mut one = app();
        one.entries.truncate(1);
        assert!(screen(&one, 120, 30).contains("Data: 1 key─"));
        assert!(screen(&app(), 120, 30).contains("Data: 2 keys"));
        let mut cut = app();
        cut.more_entries = true;
        assert!(screen(&cut, 120, 30).contains("Data: the first 2 keys"));
    }

    /// Scrolling moves the first shown entry.
    #[test]
    fn scrolling_moves_the_data() {
        let mut scrolled = app();
        scrolled.scroll_by(1);
        let text = screen(&scrolled, 120, 30);
        assert!(!text.contains("alpha") && text.contains("beta"));
    }
}
