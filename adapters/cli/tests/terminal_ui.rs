//! The terminal UI end to end, on a real terminal: tmux runs `dbadger node --bootstrap`, the
//! test types commands with send-keys and reads the screen with capture-pane. The panes fill
//! in, set / testset / get work from the command line, a resize redraws, and `quit` stops the
//! node with exit code 0 and gives the terminal back.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// How long any one expected screen may take to appear.
const SCREEN_TIMEOUT: Duration = Duration::from_secs(30);

/// A tmux server of the test's own (its own socket), killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("tmux runs (scripts/test installs it)")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "ui"]).stdout).into_owned()
    }

    /// Waits until the screen shows every one of `wanted`; returns that screen.
    fn wait_for(&self, wanted: &[&str]) -> String {
        let deadline = Instant::now() + SCREEN_TIMEOUT;
        loop {
            let screen = self.screen();
            if wanted.iter().all(|text| screen.contains(text)) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "{wanted:?} did not appear; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn type_line(&self, line: &str) {
        let typed = self.run(&["send-keys", "-t", "ui", "-l", line]);
        assert!(typed.status.success(), "{typed:?}");
        let entered = self.run(&["send-keys", "-t", "ui", "Enter"]);
        assert!(entered.status.success(), "{entered:?}");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn start(dir: &Path) -> Tmux {
    let tmux = Tmux {
        socket: format!("dbadger-ui-test-{}", std::process::id()),
    };
    let node = format!(
        "{} node --bootstrap --bind 127.0.0.1:0 --db {}; echo EXITED $?; sleep 60",
        env!("CARGO_BIN_EXE_dbadger"),
        dir.display()
    );
    let started = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "ui",
        "-x",
        "120",
        "-y",
        "40",
        &node,
    ]);
    assert!(started.status.success(), "tmux new-session: {started:?}");
    tmux
}

#[test]
fn the_terminal_ui_works_in_tmux() {
    let dir = tempfile::tempdir().expect("dir");
    let tmux = start(&dir.path().join("data"));
    tmux.wait_for(&[
        "Data: 0 keys",
        "Nodes (* leader)",
        "voter",
        "ready yes",
        "node started",
    ]);

    tmux.type_line("set hello world");
    tmux.wait_for(&["OK: hello set at revision", "hello ", "world"]);
    tmux.type_line("testset");
    let screen = tmux.wait_for(&["OK: 1000 test pairs written", "test-0000", "value-0"]);
    assert!(screen.contains("Data: the first 1000 keys"), "{screen}");
    tmux.type_line("get hello");
    tmux.wait_for(&["hello = world (revision"]);
    tmux.type_line("frobnicate");
    tmux.wait_for(&["unknown command \"frobnicate\""]);

    let resized = tmux.run(&["resize-window", "-t", "ui", "-x", "90", "-y", "30"]);
    assert!(resized.status.success(), "{resized:?}");
    let deadline = Instant::now() + SCREEN_TIMEOUT;
    loop {
        let screen = tmux.screen();
        let fits = screen.lines().next().is_some_and(|top| {
            top.chars().count() == 90 && top.starts_with('┌') && top.trim_end().ends_with('┐')
        });
        if fits && screen.contains("Logs") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no redraw at 90 columns:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    tmux.type_line("quit");
    let after = tmux.wait_for(&["EXITED 0"]);
    assert!(
        !after.contains("Nodes (* leader)"),
        "the UI's screen is gone after quitting:\n{after}"
    );
}
