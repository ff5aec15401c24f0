//! The visibility heartbeat: every message being processed is registered here, and a single
//! task extends the visibility of those whose timeout is about to run out, ten per
//! `ChangeMessageVisibilityBatch` call, so a slow sink does not cause a redelivery (and a
//! duplicate) while the first delivery is still going on. A message stays registered until its
//! delete has been sent (the guard travels with the delete).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::{StreamExt, stream};
use metrics::Gauge;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::queue::{MAX_BATCH, Queue, Receipt};

struct Entry {
    receipt: Receipt,
    /// When SQS will make the message visible again unless extended.
    deadline: Instant,
}

/// The messages being processed right now.
pub struct InFlight {
    entries: Mutex<HashMap<u64, Entry>>,
    next_key: AtomicU64,
    gauge: Gauge,
    /// Held by the heartbeat while it extends, and by releases while they run, so a release
    /// (visibility 0 or a delay) is never overwritten by an extension already on its way.
    pub visibility_lock: tokio::sync::Mutex<()>,
}

/// Removes its message from [`InFlight`] when dropped.
pub struct InFlightGuard {
    registry: Arc<InFlight>,
    key: u64,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.key);
        self.registry.gauge.decrement(1.0);
    }
}

impl InFlight {
    pub fn new(gauge: Gauge) -> Self {
        InFlight {
            entries: Mutex::new(HashMap::new()),
            next_key: AtomicU64::new(0),
            gauge,
            visibility_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// A panic elsewhere must not switch the heartbeat off: the map stays usable.
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a message received at `received` with the given visibility timeout.
    pub fn register(
        self: &Arc<Self>,
        receipt: Receipt,
        visibility: Duration,
        received: Instant,
    ) -> InFlightGuard {
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(
            key,
            Entry {
                receipt,
                deadline: received + visibility,
            },
        );
        self.gauge.increment(1.0);
        InFlightGuard {
            registry: self.clone(),
            key,
        }
    }

    /// Entries whose deadline is within `margin` of `now`, the most urgent first.
    fn due(&self, now: Instant, margin: Duration) -> Vec<(u64, Receipt)> {
        let entries = self.lock();
        let mut due: Vec<(Instant, u64, Receipt)> = entries
            .iter()
            .filter(|(_, entry)| entry.deadline <= now + margin)
            .map(|(key, entry)| (entry.deadline, *key, entry.receipt.clone()))
            .collect();
        due.sort_by_key(|(deadline, _, _)| *deadline);
        due.into_iter()
            .map(|(_, key, receipt)| (key, receipt))
            .collect()
    }

    fn extended(&self, keys: &[u64], deadline: Instant) {
        let mut entries = self.lock();
        for key in keys {
            if let Some(entry) = entries.get_mut(key) {
                entry.deadline = deadline;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Extension calls in flight at once.
const CONCURRENT_CALLS: usize = 8;

/// Extends visibility of due messages until `stop` fires. A message is due when less than half
/// of its visibility timeout is left; it is then given a full timeout again.
pub async fn run(
    registry: Arc<InFlight>,
    queue: Arc<Queue>,
    visibility: Duration,
    stop: CancellationToken,
) {
    let tick = (visibility / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let margin = visibility / 2;
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {},
            () = stop.cancelled() => return,
        }
        if !queue.visibility_allowed() {
            // Denied once: SQS's own timeout applies from now on.
            return;
        }
        let due = registry.due(Instant::now(), margin);
        if due.is_empty() {
            continue;
        }
        let _exclusive = registry.visibility_lock.lock().await;
        let chunks: Vec<&[(u64, Receipt)]> = due.chunks(MAX_BATCH).collect();
        stream::iter(chunks)
            .for_each_concurrent(CONCURRENT_CALLS, |chunk| {
                let (registry, queue) = (&registry, &queue);
                async move {
                    let changes: Vec<(Receipt, Duration)> = chunk
                        .iter()
                        .map(|(_, receipt)| (receipt.clone(), visibility))
                        .collect();
                    let sent_at = Instant::now();
                    let ok = queue
                        .change_visibility_batch(&changes, "ChangeMessageVisibilityBatch")
                        .await;
                    let keys: Vec<u64> = ok
                        .iter()
                        .filter_map(|index| chunk.get(*index).map(|(key, _)| *key))
                        .collect();
                    registry.extended(&keys, sent_at + visibility);
                    queue.telemetry().visibility_extended(keys.len());
                }
            })
            .await;
    }
}
