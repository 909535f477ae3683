//! Every committed corpus file of every fuzz target replays without a failure, under the
//! counting allocator so the codec's allocation bound is checked too.

use std::path::Path;

#[global_allocator]
static ALLOCATOR: dbadger_fuzz::CountingAllocator = dbadger_fuzz::CountingAllocator;

/// Each target's corpus exists, is not empty, and every input in it passes.
#[test]
fn corpora_replay_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (name, target) in dbadger_fuzz::TARGETS {
        let dir = root.join(name);
        let mut inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|error| panic!("corpus {} unreadable: {error}", dir.display()))
            .map(|entry| entry.expect("corpus entry").path())
            .collect();
        inputs.sort();
        assert!(!inputs.is_empty(), "corpus of {name} is empty");
        for input in &inputs {
            let data = std::fs::read(input).expect("corpus file readable");
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name} fails on {}", input.display());
        }
        eprintln!("{name}: {} inputs replayed", inputs.len());
    }
}

/// The allocation counter is live in this binary, so the bound check above is not vacuous.
#[test]
fn allocation_counting_is_active() {
    let (_, bytes) = dbadger_fuzz::allocated_during(|| std::hint::black_box(vec![0u8; 100]));
    assert!(bytes >= 100);
}
