//! The poller tasks of a source, kept alive: a poller that panics (a bug) is counted, logged and
//! started again after a growing delay, and while the source has no poller at all it is not
//! ready (its next successful receive makes it ready again).

use std::time::Duration;

use futures::future::BoxFuture;
use metrics::Counter;
use tokio::task::{JoinError, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::backoff::{Backoff, Curve};
use crate::http::health::ReadyFlag;

/// Before a panicked poller starts again: 100 ms doubling up to 30 s with the panics so far, so
/// that a poller that panics on every receive does not spin.
const RESTART_BACKOFF: Backoff = Backoff::fixed(
    Curve::Exponential,
    Duration::from_millis(100),
    Duration::from_secs(30),
)
.with_jitter();

/// The running pollers. `spawn` makes one poller's future.
pub struct Supervisor<F> {
    running: JoinSet<()>,
    spawn: F,
    panics: u32,
    panics_total: Counter,
    ready: ReadyFlag,
    /// A restart waiting for its delay gives up when this fires.
    shutdown: CancellationToken,
}

impl<F> Supervisor<F>
where
    F: Fn() -> BoxFuture<'static, ()>,
{
    pub fn new(
        spawn: F,
        ready: ReadyFlag,
        panics_total: Counter,
        shutdown: CancellationToken,
    ) -> Self {
        Supervisor {
            running: JoinSet::new(),
            spawn,
            panics: 0,
            panics_total,
            ready,
            shutdown,
        }
    }

    /// Starts one more poller.
    pub fn start(&mut self) {
        use tracing::Instrument;
        self.running.spawn((self.spawn)().in_current_span());
    }

    /// Waits for a poller to end (pending while none runs).
    pub async fn ended(&mut self) -> Option<Result<(), JoinError>> {
        self.running.join_next().await
    }

    /// What to do when a poller ended: nothing when it stopped (shutdown, or the controller
    /// let it go); when it panicked, count it and start another after a delay.
    pub fn handle(&mut self, result: Result<(), JoinError>) {
        let Err(err) = result else { return };
        if !err.is_panic() {
            return;
        }
        self.panics = self.panics.saturating_add(1);
        self.panics_total.increment(1);
        if self.running.is_empty() {
            self.ready.set(false);
        }
        let delay = RESTART_BACKOFF.delay(self.panics);
        tracing::error!(
            error = %err,
            restart_in_ms = delay.as_millis() as u64,
            "a poller panicked; starting another"
        );
        let poller = (self.spawn)();
        let shutdown = self.shutdown.clone();
        use tracing::Instrument;
        self.running.spawn(
            async move {
                tokio::select! {
                    () = tokio::time::sleep(delay) => poller.await,
                    () = shutdown.cancelled() => {}
                }
            }
            .in_current_span(),
        );
    }

    /// Waits for every poller to end (after shutdown), reporting panics without restarts.
    pub async fn join_all(&mut self) {
        while let Some(result) = self.running.join_next().await {
            if let Err(err) = result
                && err.is_panic()
            {
                self.panics_total.increment(1);
                tracing::error!(error = %err, "a poller panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::FutureExt;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_panicked_poller_is_counted_restarted_and_the_source_unready_meanwhile() {
        let started = Arc::new(AtomicUsize::new(0));
        let ready = ReadyFlag::default();
        ready.set(true);
        let spawn = {
            let started = started.clone();
            let ready = ready.clone();
            move || {
                let (started, ready) = (started.clone(), ready.clone());
                async move {
                    // The first poller panics; the next one receives (ready) and runs on.
                    if started.fetch_add(1, Ordering::SeqCst) == 0 {
                        panic!("a bug");
                    }
                    ready.set(true);
                    std::future::pending::<()>().await;
                }
                .boxed()
            }
        };
        let shutdown = CancellationToken::new();
        let mut supervisor =
            Supervisor::new(spawn, ready.clone(), Counter::noop(), shutdown.clone());
        supervisor.start();
        let ended = supervisor.ended().await.expect("the first poller ended");
        supervisor.handle(ended);
        assert!(!ready.get(), "no poller left: not ready");
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(started.load(Ordering::SeqCst), 2, "started again");
        assert!(ready.get(), "ready with the new poller's receive");
        assert_eq!(supervisor.panics, 1, "counted");
    }

    #[tokio::test(start_paused = true)]
    async fn a_restart_waiting_for_its_delay_ends_at_shutdown() {
        let spawn = || async { panic!("a bug") }.boxed();
        let shutdown = CancellationToken::new();
        let mut supervisor = Supervisor::new(
            spawn,
            ReadyFlag::default(),
            Counter::noop(),
            shutdown.clone(),
        );
        supervisor.panics = 20; // the next restart waits the 30 s ceiling
        supervisor.start();
        let ended = supervisor.ended().await.unwrap();
        supervisor.handle(ended);
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(1), supervisor.join_all())
            .await
            .expect("no wait for the restart delay");
    }
}
