//! A point on one simulated node's clock.

use std::ops::{Add, AddAssign, Sub, SubAssign};
use std::time::Duration;

use super::clock;

/// A reading of the current node's clock (see [`super::set_node_clock`]). Readings of
/// different nodes are not comparable, as with real machines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SimInstant(pub(super) std::time::Instant);

impl Add<Duration> for SimInstant {
    type Output = SimInstant;

    fn add(self, rhs: Duration) -> SimInstant {
        SimInstant(self.0 + rhs)
    }
}

impl AddAssign<Duration> for SimInstant {
    fn add_assign(&mut self, rhs: Duration) {
        self.0 += rhs;
    }
}

impl Sub<Duration> for SimInstant {
    type Output = SimInstant;

    fn sub(self, rhs: Duration) -> SimInstant {
        SimInstant(self.0.checked_sub(rhs).unwrap_or(self.0))
    }
}

impl SubAssign<Duration> for SimInstant {
    fn sub_assign(&mut self, rhs: Duration) {
        *self = *self - rhs;
    }
}

impl Sub<SimInstant> for SimInstant {
    type Output = Duration;

    fn sub(self, rhs: SimInstant) -> Duration {
        self.0.saturating_duration_since(rhs.0)
    }
}

impl openraft::Instant for SimInstant {
    fn now() -> SimInstant {
        SimInstant(clock::local_now())
    }
}
