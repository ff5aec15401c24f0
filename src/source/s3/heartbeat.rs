//! The visibility heartbeat: every message being processed is registered here, and a single
//! task extends the visibility of those whose timeout is about to run out, ten per
//! `ChangeMessageVisibilityBatch` call. A slow sink therefore never causes a redelivery (and a
//! duplicate) while the first delivery is still going on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::queue::{MAX_BATCH, Queue, Receipt};

struct Entry {
    receipt: Receipt,
    /// When SQS will make the message visible again unless extended.
    deadline: Instant,
}

/// The messages being processed right now.
#[derive(Default)]
pub struct InFlight {
    entries: Mutex<HashMap<u64, Entry>>,
    next_key: AtomicU64,
}

/// Removes its message from [`InFlight`] when the processing ends, however it ends.
pub struct InFlightGuard {
    registry: Arc<InFlight>,
    key: u64,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if let Ok(mut entries) = self.registry.entries.lock() {
            entries.remove(&self.key);
        }
    }
}

impl InFlight {
    /// Registers a message received just now with the given visibility timeout.
    pub fn register(
        self: &Arc<Self>,
        receipt: Receipt,
        visibility: Duration,
        received: Instant,
    ) -> InFlightGuard {
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(
                key,
                Entry {
                    receipt,
                    deadline: received + visibility,
                },
            );
        }
        InFlightGuard {
            registry: self.clone(),
            key,
        }
    }

    /// Entries whose deadline is within `margin` of `now`.
    fn due(&self, now: Instant, margin: Duration) -> Vec<(u64, Receipt)> {
        let Ok(entries) = self.entries.lock() else {
            return Vec::new();
        };
        entries
            .iter()
            .filter(|(_, entry)| entry.deadline <= now + margin)
            .map(|(key, entry)| (*key, entry.receipt.clone()))
            .collect()
    }

    fn extended(&self, keys: &[u64], deadline: Instant) {
        if let Ok(mut entries) = self.entries.lock() {
            for key in keys {
                if let Some(entry) = entries.get_mut(key) {
                    entry.deadline = deadline;
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

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
        for chunk in due.chunks(MAX_BATCH) {
            let changes: Vec<(Receipt, Duration)> = chunk
                .iter()
                .map(|(_, receipt)| (receipt.clone(), visibility))
                .collect();
            let sent_at = Instant::now();
            let ok = queue
                .change_visibility_batch(&changes, "ChangeMessageVisibilityBatch")
                .await;
            let keys: Vec<u64> = chunk
                .iter()
                .filter(|(_, receipt)| ok.contains(&receipt.message_id))
                .map(|(key, _)| *key)
                .collect();
            registry.extended(&keys, sent_at + visibility);
            queue.telemetry().visibility_extended(keys.len());
        }
    }
}
