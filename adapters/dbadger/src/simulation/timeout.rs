//! A future with a deadline, as a nameable type (madsim's own timeout is an opaque future).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The deadline of a [`SimTimeout`] passed first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeoutElapsed;

impl fmt::Display for TimeoutElapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for TimeoutElapsed {}

/// Runs a future until a timer fires; the future is polled first, so a future that is ready
/// at the deadline wins.
pub struct SimTimeout<F> {
    future: Pin<Box<F>>,
    timer: Pin<Box<madsim::time::Sleep>>,
}

impl<F> SimTimeout<F> {
    pub(super) fn new(future: F, timer: madsim::time::Sleep) -> SimTimeout<F> {
        SimTimeout {
            future: Box::pin(future),
            timer: Box::pin(timer),
        }
    }
}

impl<F: Future> Future for SimTimeout<F> {
    type Output = Result<F::Output, TimeoutElapsed>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(output) = self.future.as_mut().poll(cx) {
            return Poll::Ready(Ok(output));
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(TimeoutElapsed)),
            Poll::Pending => Poll::Pending,
        }
    }
}
