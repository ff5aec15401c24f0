//! The visibility heartbeat: every message being processed is registered here, and a single
//! task extends the visibility of those whose timeout is about to run out, ten per
//! `ChangeMessageVisibilityBatch` call, so a slow sink does not cause a redelivery (and a
//! duplicate) while the first delivery is still going on. A message stays registered until its
//! delete has been sent (the guard travels with the delete).
//!
//! Ordering against releases is kept per receipt, never with a lock across network calls: when
//! the heartbeat picks due messages it marks each as *being extended* under the same lock that
//! unregistering takes, and unmarks it when its call returned. A release is queued only after
//! its message was unregistered, so no extension can start for it afterwards, and
//! [`InFlight::wait_for_extensions`] makes the release wait only for an extension of the same
//! receipt already on its way — which would otherwise land after it and hide the message for a
//! whole timeout. Each extension call runs as its own task (and on a client whose attempts are
//! short, see [`super::queue::settle_attempt_timeout`]): a stalled call holds back only its ten
//! messages, and the next tick goes on extending the others.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use metrics::Gauge;
use tokio::sync::{OwnedMutexGuard, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::queue::{MAX_BATCH, Queue, Receipt};

struct Entry {
    receipt: Receipt,
    /// When SQS will make the message visible again unless extended.
    deadline: Instant,
}

/// The registered messages, and the receipts whose extension call is on its way.
#[derive(Default)]
struct State {
    entries: HashMap<u64, Entry>,
    /// By receipt handle: locked by the heartbeat for the duration of one extension call.
    extending: HashMap<String, Arc<tokio::sync::Mutex<()>>>,
}

/// The messages being processed right now.
pub struct InFlight {
    state: Mutex<State>,
    next_key: AtomicU64,
    gauge: Gauge,
}

/// One receipt marked as being extended; unmarked by [`InFlight::extension_done`].
struct Extending {
    key: u64,
    receipt: Receipt,
    _held: OwnedMutexGuard<()>,
}

/// Removes its message from [`InFlight`] when dropped.
pub struct InFlightGuard {
    registry: Arc<InFlight>,
    key: u64,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.registry.lock().entries.remove(&self.key);
        self.registry.gauge.decrement(1.0);
    }
}

impl InFlight {
    pub fn new(gauge: Gauge) -> Self {
        InFlight {
            state: Mutex::new(State::default()),
            next_key: AtomicU64::new(0),
            gauge,
        }
    }

    /// A panic elsewhere must not switch the heartbeat off: the map stays usable.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a message received at `received` with the given visibility timeout.
    pub fn register(
        self: &Arc<Self>,
        receipt: Receipt,
        visibility: Duration,
        received: Instant,
    ) -> InFlightGuard {
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        self.lock().entries.insert(
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

    /// Entries whose deadline is within `margin` of `now` and that no extension is on its way
    /// for, the most urgent first, each marked as being extended until
    /// [`InFlight::extension_done`].
    fn take_due(&self, now: Instant, margin: Duration) -> Vec<Extending> {
        let mut state = self.lock();
        let State { entries, extending } = &mut *state;
        let mut due: Vec<(Instant, u64, Receipt)> = entries
            .iter()
            .filter(|(_, entry)| entry.deadline <= now + margin)
            .filter(|(_, entry)| !extending.contains_key(&entry.receipt.handle))
            .map(|(key, entry)| (entry.deadline, *key, entry.receipt.clone()))
            .collect();
        due.sort_by_key(|(deadline, _, _)| *deadline);
        due.into_iter()
            .filter_map(|(_, key, receipt)| {
                let mark = Arc::new(tokio::sync::Mutex::new(()));
                let held = mark.clone().try_lock_owned().ok()?;
                extending.insert(receipt.handle.clone(), mark);
                Some(Extending {
                    key,
                    receipt,
                    _held: held,
                })
            })
            .collect()
    }

    /// The extension call of these receipts returned: those that succeeded (`deadline` is
    /// set for them, if they are still registered) and the others are unmarked alike.
    fn extension_done(&self, done: Vec<Extending>, succeeded: &[usize], deadline: Instant) {
        let mut state = self.lock();
        for index in succeeded {
            if let Some(key) = done.get(*index).map(|e| e.key)
                && let Some(entry) = state.entries.get_mut(&key)
            {
                entry.deadline = deadline;
            }
        }
        for extending in &done {
            state.extending.remove(&extending.receipt.handle);
        }
        // `done` drops here, after the unmarking: waiters wake to find nothing left to wait for.
    }

    /// Waits until no extension of these receipts is on its way (at once when none is). Call
    /// it for messages that are no longer registered, before changing their visibility.
    pub async fn wait_for_extensions<'a>(&self, receipts: impl IntoIterator<Item = &'a Receipt>) {
        let marks: Vec<Arc<tokio::sync::Mutex<()>>> = {
            let state = self.lock();
            receipts
                .into_iter()
                .filter_map(|receipt| state.extending.get(&receipt.handle).cloned())
                .collect()
        };
        for mark in marks {
            let _ = mark.lock().await;
        }
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
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
    let calls = Arc::new(Semaphore::new(CONCURRENT_CALLS));
    let mut running = JoinSet::new();
    loop {
        tokio::select! {
            _ = interval.tick() => {},
            () = stop.cancelled() => break,
        }
        while running.try_join_next().is_some() {}
        if !queue.visibility_allowed() {
            // Denied once: SQS's own timeout applies from now on.
            break;
        }
        let mut due = registry.take_due(Instant::now(), margin);
        while !due.is_empty() {
            let rest = due.split_off(due.len().min(MAX_BATCH));
            let chunk = std::mem::replace(&mut due, rest);
            let Ok(slot) = calls.clone().acquire_owned().await else {
                break;
            };
            let (registry, queue) = (registry.clone(), queue.clone());
            running.spawn(
                async move {
                    let changes: Vec<(Receipt, Duration)> = chunk
                        .iter()
                        .map(|extending| (extending.receipt.clone(), visibility))
                        .collect();
                    let sent_at = Instant::now();
                    let ok = queue
                        .change_visibility_batch(&changes, "ChangeMessageVisibilityBatch")
                        .await
                        .unwrap_or_default();
                    queue.telemetry().visibility_extended(ok.len());
                    registry.extension_done(chunk, &ok, sent_at + visibility);
                    drop(slot);
                }
                .in_current_span(),
            );
        }
    }
    // Calls on their way finish (their attempts are bounded); a release waiting for one of
    // them must not wait for ever.
    while running.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(n: u32) -> Receipt {
        Receipt {
            message_id: format!("m-{n}"),
            handle: format!("h-{n}"),
        }
    }

    #[tokio::test]
    async fn due_messages_are_marked_once_until_their_call_returned() {
        let registry = Arc::new(InFlight::new(Gauge::noop()));
        let now = Instant::now();
        let _a = registry.register(receipt(1), Duration::from_secs(10), now);
        let _b = registry.register(receipt(2), Duration::from_secs(60), now);
        let due = registry.take_due(now, Duration::from_secs(20));
        assert_eq!(due.len(), 1, "only the message within the margin");
        assert_eq!(due[0].receipt.handle, "h-1");
        assert!(
            registry.take_due(now, Duration::from_secs(20)).is_empty(),
            "not picked again while its extension is on its way"
        );
        registry.extension_done(due, &[0], now + Duration::from_secs(10));
        assert!(
            registry.take_due(now, Duration::from_secs(5)).is_empty(),
            "extended: no longer due"
        );
        let again = registry.take_due(now + Duration::from_secs(6), Duration::from_secs(5));
        assert_eq!(again.len(), 1, "due again later");
    }

    #[tokio::test]
    async fn an_unregistered_message_is_never_picked() {
        let registry = Arc::new(InFlight::new(Gauge::noop()));
        let now = Instant::now();
        let guard = registry.register(receipt(1), Duration::from_secs(1), now);
        drop(guard);
        assert!(registry.take_due(now, Duration::from_secs(60)).is_empty());
        assert!(registry.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_release_waits_for_an_extension_of_its_receipt_only() {
        let registry = Arc::new(InFlight::new(Gauge::noop()));
        let now = Instant::now();
        let slow = registry.register(receipt(1), Duration::from_secs(1), now);
        let due = registry.take_due(now, Duration::from_secs(5));
        assert_eq!(due.len(), 1);
        drop(slow); // the message's delivery failed: it is released while being extended

        // Another receipt's release does not wait at all.
        tokio::time::timeout(
            Duration::from_millis(1),
            registry.wait_for_extensions([&receipt(2)]),
        )
        .await
        .expect("nothing to wait for");

        // The same receipt's release waits until the extension call returned.
        let waiter = {
            let registry = registry.clone();
            tokio::spawn(async move {
                registry.wait_for_extensions([&receipt(1)]).await;
                Instant::now()
            })
        };
        tokio::time::sleep(Duration::from_secs(3)).await; // the extension call takes 3 s
        let returned = Instant::now();
        registry.extension_done(due, &[0], returned + Duration::from_secs(1));
        let released = waiter.await.unwrap();
        assert!(
            released >= returned,
            "the release went out before the extension returned"
        );
        assert!(registry.lock().extending.is_empty());
    }
}
