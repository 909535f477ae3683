//! The openraft runtime of the simulator build (`--cfg madsim`), with per-node clocks.
//!
//! [`SimRuntime`] runs openraft on madsim: tasks are madsim tasks, timers are madsim timers,
//! randomness comes from madsim's seeded generator, so one seed gives one execution. Each
//! simulated node reads its own clock ([`set_node_clock`]): openraft's election timeouts,
//! heartbeats and leases then run fast or slow on that node, as with real clock drift.
//!
//! Channels and the mutex are the runtime-free tokio primitives (through `openraft-rt-tokio`'s
//! wrappers), which wake waiters in FIFO order. The watch channel is our own
//! ([`watch::FifoWatch`]): tokio's watch picks among its internal notifiers at random, which
//! would make the simulation depend on OS randomness.

mod clock;
mod instant;
mod timeout;
mod watch;

use std::future::Future;
use std::time::Duration;

use openraft::OptionalSend;
use openraft::async_runtime::AsyncRuntime;
use rand::SeedableRng;
use rand::rngs::SmallRng;

pub use clock::{NodeClock, clear_node_clocks, set_node_clock};
pub use instant::SimInstant;
pub use timeout::{SimTimeout, TimeoutElapsed};
pub use watch::{FifoWatch, FifoWatchReceiver, FifoWatchSender};

/// openraft's async runtime on madsim.
#[derive(Debug, Default)]
pub struct SimRuntime;

impl AsyncRuntime for SimRuntime {
    type JoinError = madsim::task::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = madsim::task::JoinHandle<T>;
    type Sleep = madsim::time::Sleep;
    type Instant = SimInstant;
    type TimeoutError = TimeoutElapsed;
    type Timeout<R, T: Future<Output = R> + OptionalSend> = SimTimeout<T>;
    type ThreadLocalRng = SmallRng;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        madsim::task::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        madsim::time::sleep(clock::global_duration(duration))
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        madsim::time::sleep_until(clock::global_deadline(deadline))
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(
        duration: Duration,
        future: F,
    ) -> Self::Timeout<R, F> {
        SimTimeout::new(future, Self::sleep(duration))
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(
        deadline: Self::Instant,
        future: F,
    ) -> Self::Timeout<R, F> {
        SimTimeout::new(future, Self::sleep_until(deadline))
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        join_error.is_panic()
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        SmallRng::seed_from_u64(madsim::rand::random::<u64>())
    }

    type Mpsc = openraft_rt_tokio::TokioMpsc;
    type Watch = FifoWatch;
    type Oneshot = openraft_rt_tokio::TokioOneshot;
    type Mutex<T: OptionalSend + 'static> = openraft_rt_tokio::TokioMutex<T>;

    fn new(_threads: usize) -> Self {
        SimRuntime
    }

    /// Runs `future` in a fresh simulation of its own (seed from `MADSIM_TEST_SEED` or 0).
    /// Inside a running simulation, await futures instead.
    fn block_on<F, T>(&mut self, future: F) -> T
    where
        F: Future<Output = T>,
    {
        madsim::runtime::Runtime::new().block_on(future)
    }
}
