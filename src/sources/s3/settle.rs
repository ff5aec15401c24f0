//! Settling messages once their fate is known: deletes and releases are queued here and sent as
//! `DeleteMessageBatch` / `ChangeMessageVisibilityBatch` calls of up to ten entries, because SQS
//! bills per request.
//!
//! Each kind has its own [`crate::batch::Batcher`]: a partial batch waits only about twice as
//! long as a whole batch takes to fill at the current rate (at most [`MAX_LINGER`]), and the calls in flight
//! follow the demand (from [`INITIAL_CALLS`] up to [`MAX_CALLS`] per kind), so settling never
//! caps the source's throughput. A message being deleted stays registered with the heartbeat
//! until its delete call returned. On shutdown [`Settler::drain`] closes both batchers and
//! waits for the calls of everything queued before.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::watch;

use super::heartbeat::{InFlight, InFlightGuard};
use super::queue::{Deleted, Queue, Receipt};
use crate::backoff::{Backoff, Curve, Retry};
use crate::batch::{self, Batcher, Flush, Flushed};
use crate::http::health::ReadyFlag;

/// The longest a partial batch waits for more entries (the fixed linger this replaced).
const MAX_LINGER: Duration = Duration::from_millis(20);
/// Calls of each kind in flight at start (the fixed number this replaced).
const INITIAL_CALLS: usize = 4;
/// Calls of each kind in flight at most: 64 × 10 entries per 20 ms is 32,000 deletes a second,
/// and still 6,400 at 100 ms across regions — more than the receives of any configuration
/// (`pollers` ≤ 64, ten messages each) bring in at the same latency.
const MAX_CALLS: usize = 64;
/// Settlements queued per kind before message tasks wait.
const CAPACITY: usize = 1024;

/// Between retries of deletes SQS denied: 1 s, doubling up to 30 s, with equal jitter.
const DENIED_BACKOFF: Backoff = Backoff::fixed(
    Curve::Exponential,
    Duration::from_secs(1),
    Duration::from_secs(30),
)
.with_jitter();

/// Whether SQS lets the source delete its messages. While it denies `DeleteMessage`, every
/// message delivered would come back and be delivered again, for ever: the gate closes, the
/// source turns unready, the pollers wait at the gate instead of receiving, and the denied
/// deletes are retried with backoff (their messages stay in flight, so the heartbeat keeps
/// them hidden where it may). The first delete SQS takes opens the gate again.
pub struct DeleteGate {
    open: watch::Sender<bool>,
    ready: ReadyFlag,
}

impl DeleteGate {
    pub fn new(ready: ReadyFlag) -> Self {
        DeleteGate {
            open: watch::Sender::new(true),
            ready,
        }
    }

    pub fn is_open(&self) -> bool {
        *self.open.borrow()
    }

    /// Returns once the gate is open.
    pub async fn opened(&self) {
        let mut open = self.open.subscribe();
        let _ = open.wait_for(|open| *open).await;
    }

    /// Closes the gate; `true` if it was open.
    fn close(&self) -> bool {
        let was_open = self.open.send_replace(false);
        self.ready.set(false);
        was_open
    }

    /// Opens the gate; `true` if it was closed. Readiness comes back with the next receive.
    fn reopen(&self) -> bool {
        !self.open.send_replace(true)
    }
}

/// What to do with a message.
pub enum Settle {
    /// Every event was accepted (or nothing was to be sent): delete it. The guard keeps the
    /// heartbeat extending the message until the delete call returned.
    Delete {
        receipt: Receipt,
        guard: InFlightGuard,
    },
    /// Make it visible again after `delay` (0 for "at once").
    Release {
        receipt: Receipt,
        delay: Duration,
        reason: &'static str,
    },
}

/// The sending half, held by message tasks.
#[derive(Clone)]
pub struct SettleSender {
    queue: Arc<Queue>,
    deletes: batch::Sender<(Receipt, InFlightGuard)>,
    releases: batch::Sender<(Receipt, Duration)>,
}

impl SettleSender {
    /// Whether visibility changes (the heartbeat's extensions) are still allowed by SQS.
    pub fn visibility_allowed(&self) -> bool {
        self.queue.visibility_allowed()
    }

    pub async fn send(&self, settle: Settle) {
        let accepted = match settle {
            Settle::Delete { receipt, guard } => {
                self.deletes.submit((receipt, guard)).await.is_ok()
            }
            Settle::Release {
                receipt,
                delay,
                reason,
            } => {
                self.queue
                    .telemetry()
                    .message_released(&receipt.message_id, reason, delay);
                self.releases.submit((receipt, delay)).await.is_ok()
            }
        };
        if !accepted {
            // Only after the drain (or if the settler died): the message comes back after its
            // visibility timeout.
            tracing::error!("settler is closed; a message will be delivered again");
        }
    }
}

/// The running settler: its two batchers.
pub struct Settler {
    deletes: Batcher,
    releases: Batcher,
}

impl Settler {
    /// Starts both batchers in the current span.
    pub fn start(
        queue: Arc<Queue>,
        in_flight: Arc<InFlight>,
        gate: Arc<DeleteGate>,
        name: &str,
    ) -> (SettleSender, Settler) {
        let options = |operation| batch::Options {
            max_linger: MAX_LINGER,
            initial_calls: INITIAL_CALLS,
            max_calls: MAX_CALLS,
            capacity: CAPACITY,
            component: queue.telemetry().kind(),
            name: name.to_string(),
            operation,
        };
        let (deletes, delete_batcher) = Batcher::start(
            Deletes {
                queue: queue.clone(),
                gate,
            },
            options("DeleteMessageBatch"),
        );
        let (releases, release_batcher) = Batcher::start(
            Releases {
                queue: queue.clone(),
                in_flight,
            },
            options("ChangeMessageVisibilityBatch"),
        );
        let sender = SettleSender {
            queue,
            deletes,
            releases,
        };
        let settler = Settler {
            deletes: delete_batcher,
            releases: release_batcher,
        };
        (sender, settler)
    }

    /// Stops accepting, flushes everything queued, and waits for those calls; `false` if
    /// they did not all return by `deadline`.
    pub async fn drain(&self, deadline: Instant) -> bool {
        let (deleted, released) =
            tokio::join!(self.deletes.drain(deadline), self.releases.drain(deadline));
        deleted && released
    }
}

/// `DeleteMessageBatch`: the guards are dropped only once the call returned.
struct Deletes {
    queue: Arc<Queue>,
    gate: Arc<DeleteGate>,
}

impl Flush for Deletes {
    type Item = (Receipt, InFlightGuard);

    async fn flush(&self, batch: Vec<Self::Item>) -> Flushed {
        let (mut receipts, guards): (Vec<Receipt>, Vec<InFlightGuard>) = batch.into_iter().unzip();
        let mut retry = Retry::new(DENIED_BACKOFF);
        // `delete_batch` retries and reports failures itself; throttling on the way halves
        // the calls in flight. A denial is retried here until SQS takes the deletes (on
        // shutdown, until the settler's drain deadline: then the process exits and the
        // messages come back after their visibility timeout).
        let flushed = loop {
            match self.queue.delete_batch(&receipts).await {
                Deleted::Settled(flushed) => {
                    if self.gate.reopen() {
                        self.queue.telemetry().deletes_allowed_again();
                    }
                    break flushed;
                }
                // Not a denial (the network, throttling, a queue gone): whether deletes are
                // allowed is unknown again, so the pollers may go on; another denial closes
                // the gate again. A gate left closed would never see a delete to open it.
                Deleted::Failed(flushed) => {
                    self.gate.reopen();
                    break flushed;
                }
                Deleted::Denied {
                    pending,
                    code,
                    message,
                } => {
                    if self.gate.close() {
                        self.queue.telemetry().deletes_denied(&code, &message);
                    }
                    receipts = pending;
                    tokio::time::sleep(retry.next_delay()).await;
                }
            }
        };
        drop(guards); // only now may the heartbeat forget these messages
        flushed
    }
}

/// `ChangeMessageVisibilityBatch` with each release's delay.
struct Releases {
    queue: Arc<Queue>,
    in_flight: Arc<InFlight>,
}

impl Flush for Releases {
    type Item = (Receipt, Duration);

    async fn flush(&self, batch: Vec<Self::Item>) -> Flushed {
        // After any extension of these receipts already on its way (and only those), so it
        // cannot undo this release.
        self.in_flight
            .wait_for_extensions(batch.iter().map(|(receipt, _)| receipt))
            .await;
        match self
            .queue
            .change_visibility_batch(&batch, "ChangeMessageVisibilityBatch")
            .await
        {
            Ok(_) => Flushed::Done,
            Err(flushed) => flushed,
        }
    }
}
