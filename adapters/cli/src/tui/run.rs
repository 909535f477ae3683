//! Running the terminal UI on a real terminal: raw mode and the alternate screen (restored on
//! exit and on panic), keys read on a thread of their own, the panes refreshed from the node
//! four times a second, commands run on the node this process embeds.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dbadger::{Db, ReadPreference};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use tokio::sync::mpsc;

use super::app::{App, Command, TEST_PAIRS};
use super::view::draw;
use crate::logging::CapturedLog;

/// How many entries the data pane loads.
const DATA_ROWS: u64 = 1000;

/// How often the panes are refreshed from the node.
const REFRESH: Duration = Duration::from_millis(250);

/// Puts the terminal back as it was (cooked mode, main screen). Safe to call twice.
fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ = execute!(
        io::stdout(),
        LeaveAlternateScreen,
        ratatui::crossterm::cursor::Show
    );
}

/// Restores the terminal before any panic message is printed, so a panic never leaves the
/// user's terminal in raw mode.
fn restore_on_panic() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        previous(info);
    }));
}

/// Reads terminal events on a thread (crossterm's reads block) until `stop` is set.
fn read_events(events: mpsc::Sender<Event>, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match event::poll(Duration::from_millis(100)) {
                Ok(true) => match event::read() {
                    Ok(event) => {
                        if events.blocking_send(event).is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                },
                Ok(false) => {}
                Err(_) => return,
            }
        }
    });
}

/// Shows the UI until the user quits (`quit`, Esc or Ctrl-C) or `stopped` completes (a
/// signal).
pub(crate) async fn run(
    db: &Db,
    log: &CapturedLog,
    stopped: impl Future<Output = ()>,
) -> io::Result<()> {
    restore_on_panic();
    enable_raw_mode()?;
    execute!(io::stdout(), EnterAlternateScreen)?;
    let result = event_loop(db, log, stopped).await;
    restore_terminal();
    result
}

async fn event_loop(
    db: &Db,
    log: &CapturedLog,
    stopped: impl Future<Output = ()>,
) -> io::Result<()> {
    let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    let (sender, mut events) = mpsc::channel(64);
    let stop_reading = Arc::new(AtomicBool::new(false));
    read_events(sender, Arc::clone(&stop_reading));
    let mut app = App {
        addr: db.addr().to_owned(),
        message: "type help for the commands".to_owned(),
        ..App::default()
    };
    let mut refresh = tokio::time::interval(REFRESH);
    let mut stopped = std::pin::pin!(stopped);
    let outcome = loop {
        tokio::select! {
            () = &mut stopped => break Ok(()),
            _ = refresh.tick() => refresh_from(&mut app, db, log).await,
            event = events.recv() => match event {
                Some(event) => handle_event(&mut app, db, event).await,
                None => break Ok(()),
            },
        }
        if app.quitting {
            break Ok(());
        }
        if let Err(error) = terminal.draw(|frame| draw(frame, &app)) {
            break Err(error);
        }
    };
    stop_reading.store(true, Ordering::Relaxed);
    outcome
}

async fn refresh_from(app: &mut App, db: &Db, log: &CapturedLog) {
    if let Ok(range) = db
        .get_range(None, None, DATA_ROWS, ReadPreference::Local)
        .await
    {
        app.entries = range.entries;
        app.more_entries = range.more;
        app.scroll = app.scroll.min(app.entries.len().saturating_sub(1));
    }
    app.status = Some(db.stats());
    for line in log.drain() {
        app.log(line);
    }
}

async fn handle_event(app: &mut App, db: &Db, event: Event) {
    let Event::Key(key) = event else {
        // A resize needs nothing but the redraw that follows every event.
        return;
    };
    if key.kind == KeyEventKind::Release {
        return;
    }
    match key.code {
        KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
            app.quitting = true;
        }
        KeyCode::Esc => app.quitting = true,
        KeyCode::Char(c) => app.input.push(c),
        KeyCode::Backspace => {
            app.input.pop();
        }
        KeyCode::Up => app.scroll_by(-1),
        KeyCode::Down => app.scroll_by(1),
        KeyCode::PageUp => app.scroll_by(-10),
        KeyCode::PageDown => app.scroll_by(10),
        KeyCode::Enter => {
            if let Some(command) = app.submit() {
                app.message = execute_command(db, command).await;
            }
        }
        _ => {}
    }
}

/// Runs a command on the node; returns what to tell the user.
async fn execute_command(db: &Db, command: Command) -> String {
    let outcome = match command {
        Command::Set(key, value) => db
            .set(&key, &value)
            .await
            .map(|revision| format!("OK: {key} set at revision {revision}")),
        Command::Del(key) => db.delete(&key).await.map(|deleted| {
            format!(
                "OK: {} key deleted at revision {}",
                deleted.deleted, deleted.revision
            )
        }),
        Command::Get(key) => match db.get(&key, ReadPreference::Leader).await {
            Ok(entry) => Ok(format!(
                "{key} = {} (revision {})",
                crate::client::bytes::escape(&entry.value),
                entry.revision
            )),
            Err(dbadger::Error::NotFound) => Ok(format!("{key}: not found")),
            Err(error) => Err(error),
        },
        Command::TestSet => {
            let keys: Vec<String> = (0..TEST_PAIRS).map(|i| format!("test-{i:04}")).collect();
            let values: Vec<String> = (0..TEST_PAIRS).map(|i| format!("value-{i}")).collect();
            db.set_many(&keys, &values).await.map(|revision| {
                format!("OK: {TEST_PAIRS} test pairs written at revision {revision}")
            })
        }
        Command::Drop => db
            .delete_all()
            .await
            .map(|deleted| format!("OK: {} keys deleted", deleted.deleted)),
        Command::Snapshot => db.snapshot().await.map(|snapshot| {
            format!(
                "OK: snapshot {} (index {}, {} bytes)",
                snapshot.id, snapshot.index, snapshot.size_bytes
            )
        }),
        // A kept snapshot's id, or a snapshot file's path.
        Command::Restore(source) => {
            let path = std::path::Path::new(&source);
            let restored = if path.is_file() {
                db.restore(path).await
            } else {
                db.restore_snapshot(&source).await
            };
            restored.map(|restored| {
                format!(
                    "OK: {} keys restored at revision {}",
                    restored.keys, restored.revision
                )
            })
        }
        Command::Help | Command::Quit => Ok(String::new()),
    };
    outcome.unwrap_or_else(|error| format!("error: {error}"))
}
