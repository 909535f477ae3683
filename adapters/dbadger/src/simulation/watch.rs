//! A watch channel whose waiters wake in the order they started waiting.
//!
//! openraft publishes its metrics and state through watch channels. tokio's watch spreads its
//! waiters over several notifiers and picks one at random, from a generator seeded by the OS,
//! so the order in which woken tasks run would differ between runs of the same seed. This one
//! keeps one FIFO list of wakers.

use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::task::{Poll, Waker};

use openraft::OptionalSend;
use openraft::OptionalSync;
use openraft::async_runtime::watch::{RecvError, SendError, Watch, WatchReceiver, WatchSender};

/// The [`Watch`] implementation of [`super::SimRuntime`].
#[derive(Debug)]
pub struct FifoWatch;

#[derive(Default)]
struct Registry {
    version: u64,
    senders: usize,
    receivers: usize,
    waiting: Vec<Waker>,
}

struct Shared<T> {
    value: RwLock<T>,
    registry: Mutex<Registry>,
}

impl<T> Shared<T> {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn read(&self) -> RwLockReadGuard<'_, T> {
        self.value
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies `modify`; when it reports a change, bumps the version and wakes every waiter
    /// in the order they registered.
    fn update(&self, modify: impl FnOnce(&mut T) -> bool) -> bool {
        let changed = {
            let mut value = self
                .value
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            modify(&mut value)
        };
        if changed {
            let waiting = {
                let mut registry = self.registry();
                registry.version += 1;
                std::mem::take(&mut registry.waiting)
            };
            waiting.into_iter().for_each(Waker::wake);
        }
        changed
    }
}

/// The sending half.
pub struct FifoWatchSender<T> {
    shared: Arc<Shared<T>>,
}

/// The receiving half: remembers the last version it saw.
pub struct FifoWatchReceiver<T> {
    shared: Arc<Shared<T>>,
    seen: u64,
}

impl Watch for FifoWatch {
    type Sender<T: OptionalSend + OptionalSync> = FifoWatchSender<T>;
    type Receiver<T: OptionalSend + OptionalSync> = FifoWatchReceiver<T>;
    type Ref<'a, T: OptionalSend + 'a> = RwLockReadGuard<'a, T>;

    fn channel<T: OptionalSend + OptionalSync>(
        init: T,
    ) -> (FifoWatchSender<T>, FifoWatchReceiver<T>) {
        let shared = Arc::new(Shared {
            value: RwLock::new(init),
            registry: Mutex::new(Registry {
                senders: 1,
                receivers: 1,
                ..Registry::default()
            }),
        });
        (
            FifoWatchSender {
                shared: Arc::clone(&shared),
            },
            FifoWatchReceiver { shared, seen: 0 },
        )
    }
}

impl<T> Clone for FifoWatchSender<T> {
    fn clone(&self) -> Self {
        self.shared.registry().senders += 1;
        FifoWatchSender {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> Drop for FifoWatchSender<T> {
    fn drop(&mut self) {
        let waiting = {
            let mut registry = self.shared.registry();
            registry.senders -= 1;
            if registry.senders > 0 {
                return;
            }
            std::mem::take(&mut registry.waiting)
        };
        waiting.into_iter().for_each(Waker::wake);
    }
}

impl<T> Clone for FifoWatchReceiver<T> {
    fn clone(&self) -> Self {
        self.shared.registry().receivers += 1;
        FifoWatchReceiver {
            shared: Arc::clone(&self.shared),
            seen: self.seen,
        }
    }
}

impl<T> Drop for FifoWatchReceiver<T> {
    fn drop(&mut self) {
        self.shared.registry().receivers -= 1;
    }
}

impl<T: OptionalSend + OptionalSync> WatchSender<FifoWatch, T> for FifoWatchSender<T> {
    fn send(&self, value: T) -> Result<(), SendError<T>> {
        if self.shared.registry().receivers == 0 {
            return Err(SendError(value));
        }
        self.shared.update(|current| {
            *current = value;
            true
        });
        Ok(())
    }

    fn send_if_modified<F>(&self, modify: F) -> bool
    where
        F: FnOnce(&mut T) -> bool,
    {
        self.shared.update(modify)
    }

    fn borrow_watched(&self) -> RwLockReadGuard<'_, T> {
        self.shared.read()
    }

    fn subscribe(&self) -> FifoWatchReceiver<T> {
        let mut registry = self.shared.registry();
        registry.receivers += 1;
        FifoWatchReceiver {
            shared: Arc::clone(&self.shared),
            seen: registry.version,
        }
    }
}

impl<T: OptionalSend + OptionalSync> WatchReceiver<FifoWatch, T> for FifoWatchReceiver<T> {
    async fn changed(&mut self) -> Result<(), RecvError> {
        poll_fn(|cx| {
            let mut registry = self.shared.registry();
            if registry.version != self.seen {
                self.seen = registry.version;
                return Poll::Ready(Ok(()));
            }
            if registry.senders == 0 {
                return Poll::Ready(Err(RecvError(())));
            }
            registry.waiting.push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    fn borrow_watched(&self) -> RwLockReadGuard<'_, T> {
        self.shared.read()
    }

    fn borrow_and_update(&mut self) -> RwLockReadGuard<'_, T> {
        self.seen = self.shared.registry().version;
        self.shared.read()
    }
}
