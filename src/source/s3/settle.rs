//! Settling messages once their fate is known: deletes and releases are queued here and sent as
//! `DeleteMessageBatch` / `ChangeMessageVisibilityBatch` calls of up to ten entries, because SQS
//! bills per request.
//!
//! Batches fill up under load on their own: a batch is sent as soon as it has ten entries, or
//! when no more work is waiting in the channel. A few batches are in flight at once so a slow
//! call does not hold back the next. When every sender is gone, the remaining entries are
//! flushed and [`Settler::run`] returns — that is the drain on shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use super::queue::{MAX_BATCH, Queue, Receipt};

/// What to do with a message.
#[derive(Debug)]
pub enum Settle {
    /// Every event was accepted (or nothing was to be sent): delete it.
    Delete(Receipt),
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
        // The receiver lives until every sender is dropped, so this cannot fail in practice.
        let _ = self.0.send(settle).await;
    }
}

pub struct Settler {
    queue: Arc<Queue>,
    receiver: mpsc::Receiver<Settle>,
}

/// Batches in flight at once.
const CONCURRENT_BATCHES: usize = 4;

impl Settler {
    pub fn new(queue: Arc<Queue>) -> (SettleSender, Settler) {
        let (sender, receiver) = mpsc::channel(1024);
        (SettleSender(sender), Settler { queue, receiver })
    }

    pub async fn run(mut self) {
        let permits = Arc::new(Semaphore::new(CONCURRENT_BATCHES));
        let mut batches = JoinSet::new();
        let mut deletes: Vec<Receipt> = Vec::with_capacity(MAX_BATCH);
        let mut releases: Vec<(Receipt, Duration)> = Vec::with_capacity(MAX_BATCH);
        while let Some(first) = self.receiver.recv().await {
            let mut next = Some(first);
            while let Some(settle) = next.take() {
                match settle {
                    Settle::Delete(receipt) => deletes.push(receipt),
                    Settle::Release {
                        receipt,
                        delay,
                        reason,
                    } => {
                        self.queue
                            .telemetry()
                            .message_released(&receipt.message_id, reason, delay);
                        releases.push((receipt, delay));
                    }
                }
                if deletes.len() == MAX_BATCH {
                    self.spawn_deletes(&mut batches, &permits, &mut deletes)
                        .await;
                }
                if releases.len() == MAX_BATCH {
                    self.spawn_releases(&mut batches, &permits, &mut releases)
                        .await;
                }
                next = self.receiver.try_recv().ok();
            }
            // Nothing more is waiting: send what we have rather than hold it.
            self.spawn_deletes(&mut batches, &permits, &mut deletes)
                .await;
            self.spawn_releases(&mut batches, &permits, &mut releases)
                .await;
            while batches.try_join_next().is_some() {}
        }
        while batches.join_next().await.is_some() {}
    }

    async fn spawn_deletes(
        &self,
        batches: &mut JoinSet<()>,
        permits: &Arc<Semaphore>,
        deletes: &mut Vec<Receipt>,
    ) {
        if deletes.is_empty() {
            return;
        }
        let batch = std::mem::take(deletes);
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let queue = self.queue.clone();
        batches.spawn(async move {
            queue.delete_batch(&batch).await;
            drop(permit);
        });
    }

    async fn spawn_releases(
        &self,
        batches: &mut JoinSet<()>,
        permits: &Arc<Semaphore>,
        releases: &mut Vec<(Receipt, Duration)>,
    ) {
        if releases.is_empty() {
            return;
        }
        let batch = std::mem::take(releases);
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let queue = self.queue.clone();
        batches.spawn(async move {
            queue
                .change_visibility_batch(&batch, "ChangeMessageVisibilityBatch")
                .await;
            drop(permit);
        });
    }
}
