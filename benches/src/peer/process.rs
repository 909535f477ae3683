//! Server processes the peer benchmark starts: their CPU time and peak memory read from
//! `/proc`, kill -9, and a wait until a set of them is idle.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One server process, its output in a log file; killed when dropped.
pub struct ServerProcess {
    /// A short name for reports ("etcd-2", "dbadger-1").
    pub name: String,
    child: Option<Child>,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
}

impl ServerProcess {
    /// Spawns `command` with its output appended to `log`.
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> Result<ServerProcess, String> {
        let output = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|error| format!("cannot open {}: {error}", log.display()))?;
        let errors = output
            .try_clone()
            .map_err(|error| format!("cannot share {}: {error}", log.display()))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(errors)
            .spawn()
            .map_err(|error| format!("cannot start {name}: {error}"))?;
        Ok(ServerProcess {
            name: name.to_owned(),
            child: Some(child),
            log: log.to_path_buf(),
        })
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether it is still running (it has not exited or been killed).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// User plus system CPU time it has used so far (zero once it is gone).
    pub fn cpu_time(&self) -> Duration {
        self.pid().and_then(cpu_time_of).unwrap_or_default()
    }

    /// Its peak resident memory in bytes (`VmHWM`), zero once it is gone.
    pub fn peak_rss(&self) -> u64 {
        self.pid().and_then(peak_rss_of).unwrap_or_default()
    }

    /// SIGKILL, and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The clock ticks per second `/proc/<pid>/stat` counts in.
fn clock_ticks_per_second() -> u64 {
    // sysconf(_SC_CLK_TCK) is 100 on every Linux this runs on; libc would be one more unsafe
    // call for a constant.
    100
}

/// utime + stime of a process, from `/proc/<pid>/stat`.
fn cpu_time_of(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of the whole line are utime and stime; after the name, 12 and 13
    // counted from 1 (index 11 and 12).
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(
        ticks * 1000 / clock_ticks_per_second(),
    ))
}

/// `VmHWM` of a process in bytes, from `/proc/<pid>/status`.
fn peak_rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The CPU time all of `processes` have used so far.
pub fn total_cpu(processes: &[&ServerProcess]) -> Duration {
    processes.iter().map(|process| process.cpu_time()).sum()
}

/// Waits until `processes` together use less than 5% of one core over two consecutive
/// 200 ms windows (background work such as snapshot builds or compaction has finished), or
/// `limit` passes. Returns whether they became idle.
pub fn wait_idle(processes: &[&ServerProcess], limit: Duration) -> bool {
    const WINDOW: Duration = Duration::from_millis(200);
    let idle_budget = WINDOW / 20;
    let give_up = Instant::now() + limit;
    let mut quiet_windows = 0;
    while Instant::now() < give_up {
        let before = total_cpu(processes);
        std::thread::sleep(WINDOW);
        let used = total_cpu(processes).saturating_sub(before);
        quiet_windows = if used <= idle_budget {
            quiet_windows + 1
        } else {
            0
        };
        if quiet_windows >= 2 {
            return true;
        }
    }
    false
}

/// A loopback port nobody listens on right now (the OS's choice for port 0).
pub fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|error| format!("cannot find a free port: {error}"))?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(|error| format!("cannot find a free port: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_time_and_peak_memory() {
        let pid = std::process::id();
        // Burn a little CPU so that at least one tick is counted.
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(50) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        assert!(cpu_time_of(pid).is_some_and(|cpu| cpu > Duration::ZERO));
        assert!(peak_rss_of(pid).is_some_and(|bytes| bytes > 1 << 20));
        assert!(cpu_time_of(u32::MAX).is_none());
    }
}
