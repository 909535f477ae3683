//! The async runtime openraft runs on: tokio in production, madsim in the simulator build
//! (`--cfg madsim`, see [`crate::simulation`]).

#[cfg(not(madsim))]
pub(crate) type Runtime = openraft_rt_tokio::TokioRuntime;

#[cfg(madsim)]
pub(crate) type Runtime = crate::simulation::SimRuntime;

/// Runs the state machine's commit (see
/// [`dbadger_core::raft_storage::BlockingSection`]). On tokio's multi-threaded runtime the
/// commit runs in `block_in_place`: the worker's queued tasks move to another thread for the
/// flush's duration. Without it, the request a commit's answer has just woken sits in the
/// worker's own next-task slot, which no other worker takes, until the flush ends (about one
/// fdatasync added to every write's latency). Elsewhere (one thread, the simulator) it runs
/// the work as it is.
#[cfg(not(madsim))]
pub(crate) fn blocking_section(work: &mut dyn FnMut()) {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

#[cfg(madsim)]
pub(crate) use dbadger_core::raft_storage::run_in_place as blocking_section;

#[cfg(all(test, not(madsim)))]
mod tests {
    use std::future::{Future, poll_fn};
    use std::pin::Pin;
    use std::sync::mpsc;
    use std::time::Duration;

    /// A task woken inside a blocking section (as a commit's answers wake the requests that
    /// wait for them) runs while the section still blocks, instead of waiting for it to end.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_task_woken_inside_the_section_runs_before_it_ends() {
        let (wake_tx, mut wake_rx) = tokio::sync::oneshot::channel::<()>();
        let (registered_tx, registered_rx) = tokio::sync::oneshot::channel::<()>();
        let (ran_tx, ran_rx) = mpsc::channel::<()>();
        tokio::spawn(async move {
            let mut registered = Some(registered_tx);
            // Wait for the wake-up, saying so once the waker is registered.
            let woken = poll_fn(|cx| {
                let poll = Pin::new(&mut wake_rx).poll(cx);
                if let Some(registered) = registered.take() {
                    let _ = registered.send(());
                }
                poll
            })
            .await;
            if woken.is_ok() {
                let _ = ran_tx.send(());
            }
        });
        registered_rx.await.expect("the waiting task started");
        let section = tokio::spawn(async move {
            let mut wake = Some(wake_tx);
            let mut ran_meanwhile = false;
            super::blocking_section(&mut || {
                if let Some(wake) = wake.take() {
                    let _ = wake.send(());
                }
                ran_meanwhile = ran_rx.recv_timeout(Duration::from_secs(5)).is_ok();
            });
            ran_meanwhile
        });
        assert!(
            section.await.expect("the section's task ended"),
            "the woken task did not run while the section blocked"
        );
    }
}
