//! dbadger-core stays sans-IO: no I/O crate in its normal dependency tree and no reach for
//! files, sockets, threads, clocks or OS randomness in its source.

use std::path::Path;
use std::process::Command;

/// Crates that perform I/O, spawn threads or own a runtime. None may appear in the core's
/// normal (non-dev) dependency tree.
///
/// `getrandom` is not listed: openraft depends on `rand` with its default features, which pull
/// it in, but openraft draws every random number through the runtime's `thread_rng` (seeded by
/// madsim in the simulator), and the source check below keeps the core itself from calling it.
const FORBIDDEN_CRATES: &[&str] = &[
    "tokio",
    "madsim",
    "madsim-tokio",
    "madsim-tonic",
    "tonic",
    "hyper",
    "axum",
    "h2",
    "mio",
    "socket2",
    "heed",
    "lmdb-master-sys",
    "rustls",
    "ring",
    "openraft-rt-tokio",
    "async-std",
    "smol",
];

/// Source patterns that reach for the world. Test modules are exempt from nothing: the core's
/// tests need none of these either.
const FORBIDDEN_PATTERNS: &[&str] = &[
    "std::fs",
    "std::net",
    "std::thread",
    "std::process",
    "std::env",
    "Instant::now",
    "SystemTime::now",
    "thread_rng",
    "OsRng",
    "tokio::",
];

/// `cargo tree -e normal` of dbadger-core lists no I/O crate.
#[test]
fn dependency_tree_has_no_io_crate() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let output = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .args(["-p", "dbadger-core"])
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8(output.stdout).expect("cargo tree prints UTF-8");
    assert!(tree.contains("openraft"), "the tree was read: {tree}");
    for line in tree.lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        assert!(
            !FORBIDDEN_CRATES.contains(&name),
            "dbadger-core depends on the I/O crate {name}:\n{tree}"
        );
    }
}

/// No source file of dbadger-core names a forbidden API.
#[test]
fn sources_reach_for_no_io() {
    let mut offenders = Vec::new();
    visit(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut offenders,
    );
    assert!(
        offenders.is_empty(),
        "I/O in the sans-IO core:\n{}",
        offenders.join("\n")
    );
}

fn visit(dir: &Path, offenders: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("readable source dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            visit(&path, offenders);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let text = std::fs::read_to_string(&path).expect("readable source");
            for (number, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                for pattern in FORBIDDEN_PATTERNS {
                    if code.contains(pattern) {
                        offenders.push(format!(
                            "{}:{}: {}",
                            path.display(),
                            number + 1,
                            line.trim()
                        ));
                    }
                }
            }
        }
    }
}
