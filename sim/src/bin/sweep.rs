//! Runs simulation seeds and lists the failing ones.
//!
//! ```text
//! cargo sim-run --release -p dbadger-sim --bin sweep -- --seeds 1..2000 --jobs 2
//! cargo sim-run --release -p dbadger-sim --bin sweep -- --seed 17 --verbose
//! cargo sim-run --release -p dbadger-sim --bin sweep -- --seeds 1..200 --recover
//! cargo sim-run --release -p dbadger-sim --bin sweep -- --seeds 1..400 --jobs 1 --nodes 3
//! ```
//!
//! `--nodes N` runs only the seeds of the range whose cluster starts with N nodes (3 or 5),
//! for measuring the simulator's speed on one cluster size.

#[cfg(madsim)]
fn main() -> std::process::ExitCode {
    sweep::main()
}

#[cfg(not(madsim))]
fn main() -> std::process::ExitCode {
    eprintln!(
        "the simulator runs only in the madsim build: cargo sim-run --release -p dbadger-sim --bin sweep -- --help"
    );
    std::process::ExitCode::from(2)
}

#[cfg(madsim)]
mod sweep {
    use std::process::ExitCode;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use dbadger_sim::coverage::CoverageTable;
    use dbadger_sim::recover_run::run_recover;
    use dbadger_sim::scenario::{Report, Scenario, replay_command, run};

    struct Options {
        first: u64,
        end: u64,
        jobs: u64,
        verbose: bool,
        history: Option<String>,
        recover: bool,
        nodes: Option<usize>,
    }

    fn parse() -> Result<Options, String> {
        let mut options = Options {
            first: 1,
            end: 101,
            jobs: 2,
            verbose: false,
            history: None,
            recover: false,
            nodes: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or(format!("{arg} needs a value"));
            match arg.as_str() {
                "--seed" => {
                    let seed = value()?.parse().map_err(|_| "--seed takes a number")?;
                    options.first = seed;
                    options.end = seed + 1;
                }
                "--seeds" => {
                    let range = value()?;
                    let (first, end) = range
                        .split_once("..")
                        .ok_or("--seeds takes FIRST..END (END excluded)")?;
                    options.first = first.parse().map_err(|_| "bad first seed")?;
                    options.end = end.parse().map_err(|_| "bad end seed")?;
                }
                "--jobs" => options.jobs = value()?.parse().map_err(|_| "--jobs takes a number")?,
                "--verbose" => options.verbose = true,
                "--recover" => options.recover = true,
                "--history" => options.history = Some(value()?),
                "--nodes" => {
                    options.nodes = Some(value()?.parse().map_err(|_| "--nodes takes a number")?)
                }
                "--help" | "-h" => {
                    return Err(
                        "usage: sweep [--seed N | --seeds FIRST..END] [--jobs N] [--nodes 3|5] [--verbose] [--history FILE] [--recover]"
                            .into(),
                    );
                }
                other => return Err(format!("unknown argument {other}")),
            }
        }
        Ok(options)
    }

    fn describe(report: &Report) -> String {
        let scenario = &report.scenario;
        format!(
            "seed {} ({} nodes, faults {:?}): {} ops ({} ok, {} unknown), {} fault actions, {} crashes, {:.1} s simulated, {} store steps checked, history checked in {:.1} ms, trace {:016x}",
            scenario.seed,
            scenario.nodes,
            scenario.faults,
            report.operations,
            report.succeeded,
            report.unknown,
            report.fault_actions,
            report.crashes,
            report.simulated.as_secs_f64(),
            report.checked_steps,
            report.check_time.as_secs_f64() * 1000.0,
            report.trace_hash
        )
    }

    pub(super) fn main() -> ExitCode {
        if std::env::var_os("DBADGER_SIM_TRACE").is_some() {
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::DEBUG)
                .with_writer(std::io::stderr)
                .init();
        }
        let options = match parse() {
            Ok(options) => options,
            Err(message) => {
                eprintln!("{message}");
                return ExitCode::from(2);
            }
        };
        let started = Instant::now();
        let next = Arc::new(AtomicU64::new(options.first));
        let ran = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let simulated = Arc::new(Mutex::new(0.0_f64));
        let checking = Arc::new(Mutex::new(0.0_f64));
        let coverage = Arc::new(Mutex::new(CoverageTable::default()));
        let workers: Vec<_> = (0..options.jobs.max(1))
            .map(|_| {
                let next = Arc::clone(&next);
                let ran = Arc::clone(&ran);
                let failures = Arc::clone(&failures);
                let simulated = Arc::clone(&simulated);
                let checking = Arc::clone(&checking);
                let coverage = Arc::clone(&coverage);
                let verbose = options.verbose;
                let end = options.end;
                let history_file = options.history.clone();
                let recover = options.recover;
                let nodes = options.nodes;
                std::thread::spawn(move || {
                    loop {
                        let seed = next.fetch_add(1, Ordering::SeqCst);
                        if seed >= end {
                            break;
                        }
                        let scenario = Scenario::for_seed(seed);
                        if nodes.is_some_and(|nodes| nodes != scenario.nodes) {
                            continue;
                        }
                        ran.fetch_add(1, Ordering::SeqCst);
                        if recover {
                            let report = run_recover(&scenario);
                            if verbose || !report.violations.is_empty() {
                                eprintln!(
                                    "recover seed {seed}: {} operations, survivor at index {}",
                                    report.operations, report.survivor_last_index
                                );
                            }
                            if !report.violations.is_empty() {
                                for violation in report.violations.iter().take(5) {
                                    eprintln!("  {violation}");
                                }
                                failures
                                    .lock()
                                    .unwrap_or_else(|p| p.into_inner())
                                    .push(seed);
                            }
                            continue;
                        }
                        let report = run(&scenario);
                        if let Some(path) = &history_file {
                            let lines: Vec<String> = report
                                .history
                                .iter()
                                .map(|record| format!("{record:?}"))
                                .collect();
                            if let Err(error) = std::fs::write(path, lines.join("\n")) {
                                eprintln!("cannot write {path}: {error}");
                            }
                        }
                        *simulated.lock().unwrap_or_else(|p| p.into_inner()) +=
                            report.simulated.as_secs_f64();
                        *checking.lock().unwrap_or_else(|p| p.into_inner()) +=
                            report.check_time.as_secs_f64();
                        coverage
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .add(&report.coverage);
                        if verbose || !report.passed() {
                            eprintln!("{}", describe(&report));
                        }
                        if !report.passed() {
                            for violation in report.violations.iter().take(5) {
                                eprintln!("  {violation}");
                            }
                            eprintln!("  replay: {}", replay_command(seed));
                            failures
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push(seed);
                        }
                    }
                })
            })
            .collect();
        for worker in workers {
            if worker.join().is_err() {
                eprintln!("a worker panicked");
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        let seeds = ran.load(Ordering::SeqCst);
        let simulated = *simulated.lock().unwrap_or_else(|p| p.into_inner());
        let checking = *checking.lock().unwrap_or_else(|p| p.into_inner());
        if !options.recover {
            eprint!(
                "coverage over {seeds} seeds:\n{}",
                coverage.lock().unwrap_or_else(|p| p.into_inner()).render()
            );
            eprintln!(
                "history checks: {:.1} ms per seed on average",
                checking * 1000.0 / seeds.max(1) as f64
            );
        }
        let mut failed = failures.lock().unwrap_or_else(|p| p.into_inner()).clone();
        failed.sort_unstable();
        eprintln!(
            "{seeds} seeds in {elapsed:.1} s ({:.1} seeds/min, {:.1} simulated s per wall s); failing: {failed:?}",
            seeds as f64 * 60.0 / elapsed,
            simulated / elapsed
        );
        if failed.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}
