//! Per-node clocks: each simulated node reads global simulated time through an offset and a
//! rate, and the rate can change while the node runs (a piecewise-linear clock).
//!
//! The current node is found by its host name, which madsim answers per task (so tasks that
//! libraries spawn on a node read that node's clock too). Nodes without a clock, and code
//! outside any node, read global time. The table is per OS thread: a simulation runs on one
//! thread, so simulations on parallel test threads do not see each other's clocks.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How one node's clock relates to simulated time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NodeClock {
    /// How far the clock is ahead of simulated time (negative: behind), in nanoseconds.
    pub offset_nanos: i64,
    /// Clock seconds per simulated second (1.0: no drift). Must be positive.
    pub rate: f64,
}

impl Default for NodeClock {
    fn default() -> Self {
        NodeClock {
            offset_nanos: 0,
            rate: 1.0,
        }
    }
}

/// A clock as an anchor (a global instant and the local reading there) and a rate.
#[derive(Clone, Copy, Debug)]
struct Piece {
    global: Instant,
    local: Instant,
    rate: f64,
}

impl Piece {
    fn local_at(&self, global: Instant) -> Instant {
        let elapsed = global.saturating_duration_since(self.global);
        self.local + elapsed.mul_f64(self.rate)
    }

    fn global_at(&self, local: Instant) -> Instant {
        let ahead = local.saturating_duration_since(self.local);
        self.global + ahead.div_f64(self.rate)
    }
}

thread_local! {
    static CLOCKS: RefCell<HashMap<String, Piece>> = RefCell::new(HashMap::new());
}

fn shift(instant: Instant, nanos: i64) -> Instant {
    let magnitude = Duration::from_nanos(nanos.unsigned_abs());
    if nanos >= 0 {
        instant + magnitude
    } else {
        instant.checked_sub(magnitude).unwrap_or(instant)
    }
}

/// Sets the clock of the node named `node` from now on. The offset applies to the reading at
/// this moment; afterwards the clock advances at `rate`. Setting it again keeps the clock
/// continuous when only the rate changes (`offset_nanos` 0), as real drift does; a nonzero
/// offset makes it jump.
pub fn set_node_clock(node: &str, clock: NodeClock) {
    let rate = if clock.rate.is_finite() && clock.rate > 0.0 {
        clock.rate
    } else {
        1.0
    };
    let global = Instant::now();
    CLOCKS.with(|clocks| {
        let mut clocks = clocks.borrow_mut();
        let current = clocks
            .get(node)
            .map_or(global, |piece| piece.local_at(global));
        clocks.insert(
            node.to_owned(),
            Piece {
                global,
                local: shift(current, clock.offset_nanos),
                rate,
            },
        );
    });
}

/// Forgets every node clock of this thread (call at the start of a simulation).
pub fn clear_node_clocks() {
    CLOCKS.with(|clocks| clocks.borrow_mut().clear());
}

/// The clock of the simulated node the current task runs on: madsim answers libc's
/// `gethostname` with the node's name, per task. (Crates that read the host name through
/// `uname` see the real one.) Called on every clock reading, so it does not allocate.
#[allow(unsafe_code)]
fn current_piece() -> Option<Piece> {
    if CLOCKS.with(|clocks| clocks.borrow().is_empty()) {
        return None;
    }
    let mut buffer = [0u8; 256];
    // SAFETY: the pointer and length describe `buffer`, which outlives the call; the function
    // writes at most `buffer.len()` bytes into it.
    let status = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if status != 0 {
        return None;
    }
    let end = buffer.iter().position(|byte| *byte == 0)?;
    let name = std::str::from_utf8(&buffer[..end]).ok()?;
    CLOCKS.with(|clocks| clocks.borrow().get(name).copied())
}

/// The current node's clock reading.
pub(super) fn local_now() -> Instant {
    let now = Instant::now();
    current_piece().map_or(now, |piece| piece.local_at(now))
}

/// How long in simulated time `duration` on the current node's clock lasts.
pub(super) fn global_duration(duration: Duration) -> Duration {
    current_piece().map_or(duration, |piece| duration.div_f64(piece.rate))
}

/// The simulated instant at which the current node's clock reads `deadline`.
pub(super) fn global_deadline(deadline: super::SimInstant) -> Instant {
    current_piece().map_or(deadline.0, |piece| piece.global_at(deadline.0))
}
