//! Settling messages once their fate is known: deletes and releases are queued here and sent as
//! `DeleteMessageBatch` / `ChangeMessageVisibilityBatch` calls of up to ten entries, because SQS
//! bills per request.
//!
//! A batch is sent when it has ten entries or when it has waited [`LINGER`]; a few batches are
//! in flight at once so a slow call does not hold back the next. A message being deleted stays
//! registered with the heartbeat until its delete call returned. When every sender is gone,
//! the remaining entries are flushed and [`Settler::run`] returns — the drain on shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout_at};
use tracing::Instrument;

use super::heartbeat::{InFlight, InFlightGuard};
use super::queue::{MAX_BATCH, Queue, Receipt};

/// How long a partial batch waits for more entries.
const LINGER: Duration = Duration::from_millis(20);
/// Batches in flight at once.
const CONCURRENT_BATCHES: usize = 4;

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
pub struct SettleSender(mpsc::Sender<Settle>);

impl SettleSender {
    pub async fn send(&self, settle: Settle) {
        if self.0.send(settle).await.is_err() {
            // Only possible if the settler died: the message comes back after its timeout.
            tracing::error!("settler is gone; a message will be delivered again");
        }
    }
}

pub struct Settler {
    queue: Arc<Queue>,
    in_flight: Arc<InFlight>,
    receiver: mpsc::Receiver<Settle>,
    permits: Arc<Semaphore>,
    batches: JoinSet<()>,
    deletes: Vec<(Receipt, InFlightGuard)>,
    releases: Vec<(Receipt, Duration)>,
}

impl Settler {
    pub fn new(queue: Arc<Queue>, in_flight: Arc<InFlight>) -> (SettleSender, Settler) {
        let (sender, receiver) = mpsc::channel(1024);
        let settler = Settler {
            queue,
            in_flight,
            receiver,
            permits: Arc::new(Semaphore::new(CONCURRENT_BATCHES)),
            batches: JoinSet::new(),
            deletes: Vec::with_capacity(MAX_BATCH),
            releases: Vec::with_capacity(MAX_BATCH),
        };
        (SettleSender(sender), settler)
    }

    pub async fn run(mut self) {
        while let Some(first) = self.receiver.recv().await {
            self.add(first);
            let linger_until = Instant::now() + LINGER;
            loop {
                if self.deletes.len() >= MAX_BATCH {
                    self.spawn_deletes().await;
                }
                if self.releases.len() >= MAX_BATCH {
                    self.spawn_releases().await;
                }
                match timeout_at(linger_until, self.receiver.recv()).await {
                    Ok(Some(settle)) => self.add(settle),
                    // Closed (drain) or lingered long enough: send what we have.
                    Ok(None) | Err(_) => break,
                }
            }
            self.spawn_deletes().await;
            self.spawn_releases().await;
            while let Some(result) = self.batches.try_join_next() {
                report_panic(result);
            }
        }
        while let Some(result) = self.batches.join_next().await {
            report_panic(result);
        }
    }

    fn add(&mut self, settle: Settle) {
        match settle {
            Settle::Delete { receipt, guard } => self.deletes.push((receipt, guard)),
            Settle::Release {
                receipt,
                delay,
                reason,
            } => {
                self.queue
                    .telemetry()
                    .message_released(&receipt.message_id, reason, delay);
                self.releases.push((receipt, delay));
            }
        }
    }

    async fn spawn_deletes(&mut self) {
        if self.deletes.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.deletes);
        let Ok(permit) = self.permits.clone().acquire_owned().await else {
            return;
        };
        let queue = self.queue.clone();
        self.batches.spawn(
            async move {
                let (receipts, guards): (Vec<Receipt>, Vec<InFlightGuard>) =
                    batch.into_iter().unzip();
                queue.delete_batch(&receipts).await;
                drop(guards); // only now may the heartbeat forget these messages
                drop(permit);
            }
            .in_current_span(),
        );
    }

    async fn spawn_releases(&mut self) {
        if self.releases.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.releases);
        let Ok(permit) = self.permits.clone().acquire_owned().await else {
            return;
        };
        let (queue, in_flight) = (self.queue.clone(), self.in_flight.clone());
        self.batches.spawn(
            async move {
                // After any extension already on its way, so it cannot undo this release.
                in_flight
                    .wait_for_extensions(batch.iter().map(|(receipt, _)| receipt))
                    .await;
                queue
                    .change_visibility_batch(&batch, "ChangeMessageVisibilityBatch")
                    .await;
                drop(permit);
            }
            .in_current_span(),
        );
    }
}

fn report_panic(result: Result<(), tokio::task::JoinError>) {
    if let Err(err) = result
        && err.is_panic()
    {
        tracing::error!(error = %err, "a delete or release batch panicked; its messages will be delivered again");
    }
}
