//! One coalescing batcher for every batched AWS call (SQS's `SendMessageBatch`,
//! `DeleteMessageBatch`, `ChangeMessageVisibilityBatch`): items submitted by many tasks go out in
//! calls of at most ten entries whose sizes add up to at most the call's byte limit, because AWS
//! bills per request — while the number of calls in flight follows the demand, because at real
//! AWS latency (5–30 ms, 100 ms across regions) throughput is calls in flight × entries per call
//! ÷ latency.
//!
//! What the batcher knows of the calls is a [`Flush`]: an item's size, the byte limit, and the
//! call itself, which answers every entry's outcome on its own (a reply channel, dropping a
//! guard) and tells the batcher only how the call went ([`Flushed`]).
//!
//! **When a batch goes.** At once when it is full (ten entries, or the next item would not fit
//! in the byte limit; that item starts the next batch). A partial batch waits, from its first
//! entry, twice the time a whole batch takes to fill at the current arrival rate (a count of
//! arrivals decaying over `max_linger`, [`Linger`]; twice, because arrivals come in bursts and
//! a batch must not leave on every pause between two), never longer than `max_linger`; when
//! not even one item per `max_linger` was arriving, arrivals have stopped and it goes as soon
//! as the queue is empty. On close it goes at once.
//!
//! **How many calls at once.** A ready batch starts a call when fewer than the current limit
//! are in flight. Otherwise it keeps filling (up to full) and waits; that wait — demand above
//! what the calls carry — raises the limit by one per round trip of calls (additive increase).
//! A throttled or failed call halves it (multiplicative decrease, once per round). The limit
//! stays between 1 and a ceiling ([`Concurrency`]). So under load batches fill to ten and the
//! calls multiply until they carry the load or the service pushes back; a lone item waits at
//! most `max_linger`.
//!
//! **Drain.** [`Batcher::close`] stops accepting (a later [`Sender::submit`] fails at once with
//! the item, never hangs); everything accepted before is flushed, and [`Batcher::drain`] waits
//! until the last call returned. If every sender is dropped the batcher drains the same way.
//!
//! The gauges `aws_event_adapter_batch_concurrency_limit` and
//! `aws_event_adapter_batch_calls_in_flight` (labels `component`, `name`, `operation`) show the
//! controller at work. This is a mechanism: it knows nothing of SQS or of the components.

mod control;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use metrics::{Gauge, gauge};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until, timeout_at};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub use control::{Concurrency, Flushed, Linger};

/// Entries per call: SQS's batch calls take at most ten.
pub const MAX_ENTRIES: usize = 10;

/// One kind of batched call.
pub trait Flush: Send + Sync + 'static {
    type Item: Send + 'static;

    /// What an item counts against [`Flush::limit`] (0 when there is no byte limit).
    fn size(_item: &Self::Item) -> usize {
        0
    }

    /// Largest sum of sizes in one call.
    fn limit(&self) -> usize {
        usize::MAX
    }

    /// Makes the call for `batch`: answers every entry, and says how the call went.
    fn flush(&self, batch: Vec<Self::Item>) -> impl Future<Output = Flushed> + Send;
}

/// How a batcher behaves, and the labels of its gauges.
#[derive(Debug, Clone)]
pub struct Options {
    /// The longest a partial batch waits for more entries.
    pub max_linger: Duration,
    /// Calls allowed in flight at start.
    pub initial_calls: usize,
    /// Calls allowed in flight at most.
    pub max_calls: usize,
    /// Items queued before [`Sender::submit`] waits.
    pub capacity: usize,
    pub component: &'static str,
    pub name: String,
    pub operation: &'static str,
}

/// Submits items; cheap to clone.
pub struct Sender<T>(mpsc::Sender<T>);

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender(self.0.clone())
    }
}

/// The batcher is closed (or gone); the item was not accepted.
#[derive(Debug)]
pub struct Closed<T>(pub T);

impl<T: Send> Sender<T> {
    /// Queues `item` (waits while the queue is full); fails once the batcher is closed.
    pub async fn submit(&self, item: T) -> Result<(), Closed<T>> {
        self.0.send(item).await.map_err(|err| Closed(err.0))
    }
}

/// The handle of a running batcher: its state, and its explicit drain.
pub struct Batcher {
    close: CancellationToken,
    finished: CancellationToken,
    limit: Arc<AtomicUsize>,
}

impl Batcher {
    /// Starts the batcher's task (in the current span) and returns its sender and handle.
    pub fn start<F: Flush>(flush: F, options: Options) -> (Sender<F::Item>, Batcher) {
        let (sender, receiver) = mpsc::channel(options.capacity.max(1));
        let close = CancellationToken::new();
        let finished = CancellationToken::new();
        let limit = Arc::new(AtomicUsize::new(0));
        let gauges = Gauges::new(&options);
        let concurrency = Concurrency::new(options.initial_calls, options.max_calls);
        limit.store(concurrency.limit(), Ordering::Relaxed);
        gauges.limit.set(concurrency.limit() as f64);
        let run = Run {
            flush: Arc::new(flush),
            receiver,
            close: close.clone(),
            linger: Linger::new(options.max_linger),
            concurrency,
            shown_limit: limit.clone(),
            gauges,
            calls: JoinSet::new(),
            batch: Vec::with_capacity(MAX_ENTRIES),
            bytes: 0,
            carry: None,
            first: Instant::now(),
            due: Instant::now(),
        };
        let done = finished.clone().drop_guard();
        tokio::spawn(
            async move {
                run.run().await;
                drop(done);
            }
            .in_current_span(),
        );
        (
            Sender(sender),
            Batcher {
                close,
                finished,
                limit,
            },
        )
    }

    /// Stops accepting items; those accepted before are still flushed.
    pub fn close(&self) {
        self.close.cancel();
    }

    /// Closes, then waits until every accepted item was flushed and its call returned;
    /// `false` if that did not happen by `deadline`.
    pub async fn drain(&self, deadline: Instant) -> bool {
        self.close();
        timeout_at(deadline, self.finished.cancelled())
            .await
            .is_ok()
    }

    /// Calls allowed in flight now.
    pub fn concurrency_limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }
}

struct Gauges {
    limit: Gauge,
    in_flight: Gauge,
}

impl Gauges {
    fn new(options: &Options) -> Self {
        let labels = [
            ("component", options.component.to_string()),
            ("name", options.name.clone()),
            ("operation", options.operation.to_string()),
        ];
        Gauges {
            limit: gauge!("aws_event_adapter_batch_concurrency_limit", &labels),
            in_flight: gauge!("aws_event_adapter_batch_calls_in_flight", &labels),
        }
    }
}

/// The batcher's task.
struct Run<F: Flush> {
    flush: Arc<F>,
    receiver: mpsc::Receiver<F::Item>,
    close: CancellationToken,
    linger: Linger,
    concurrency: Concurrency,
    shown_limit: Arc<AtomicUsize>,
    gauges: Gauges,
    /// Calls in flight, each answering how it went and the round it started in.
    calls: JoinSet<(Flushed, u64)>,
    /// The batch being filled, and the sum of its sizes.
    batch: Vec<F::Item>,
    bytes: usize,
    /// An item that did not fit in `batch`: the first of the next one.
    carry: Option<F::Item>,
    /// When the batch's first entry arrived, and until when it may wait for more.
    first: Instant,
    due: Instant,
}

impl<F: Flush> Run<F> {
    async fn run(mut self) {
        // `closing`: no new items; `ended`: the queue is empty and will stay so.
        let (mut closing, mut ended) = (false, false);
        loop {
            if !ended {
                ended = self.take_queued();
            }
            if !self.batch.is_empty() {
                let ready = self.is_full() || closing || ended || Instant::now() >= self.due;
                if ready {
                    if self.calls.len() < self.concurrency.limit() {
                        self.start_call();
                        continue;
                    }
                    self.concurrency.starved();
                }
            } else if ended && self.calls.is_empty() {
                return;
            }
            let waiting = !self.batch.is_empty() && !self.is_full() && !closing && !ended;
            tokio::select! {
                biased;
                Some(answer) = self.calls.join_next(), if !self.calls.is_empty() => {
                    self.answered(answer);
                }
                () = self.close.cancelled(), if !closing => {
                    closing = true;
                    self.receiver.close();
                }
                item = self.receiver.recv(), if !ended && !self.is_full() => match item {
                    Some(item) => self.add(item),
                    None => ended = true,
                },
                () = sleep_until(self.due), if waiting && Instant::now() < self.due => {}
            }
        }
    }

    /// Adds what is queued already, without waiting, until the batch is full; `true` once the
    /// queue is closed and empty.
    fn take_queued(&mut self) -> bool {
        if self.batch.is_empty()
            && let Some(item) = self.carry.take()
        {
            self.add(item);
        }
        while !self.is_full() {
            match self.receiver.try_recv() {
                Ok(item) => self.add(item),
                Err(TryRecvError::Empty) => return false,
                Err(TryRecvError::Disconnected) => return true,
            }
        }
        false
    }

    fn is_full(&self) -> bool {
        self.batch.len() >= MAX_ENTRIES || self.carry.is_some()
    }

    fn add(&mut self, item: F::Item) {
        let now = Instant::now();
        self.linger.arrived(now);
        let size = F::size(&item);
        if !self.batch.is_empty() && self.bytes.saturating_add(size) > self.flush.limit() {
            self.carry = Some(item);
            return;
        }
        if self.batch.is_empty() {
            self.first = now;
        }
        self.bytes += size;
        self.batch.push(item);
        self.due = self.linger.deadline(self.first, now);
    }

    fn start_call(&mut self) {
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(MAX_ENTRIES));
        self.bytes = 0;
        let (flush, round) = (self.flush.clone(), self.concurrency.round());
        self.calls.spawn(
            async move {
                let flushed = flush.flush(batch).await;
                (flushed, round)
            }
            .in_current_span(),
        );
        self.gauges.in_flight.set(self.calls.len() as f64);
        // The carried item starts the next batch now, with its own linger.
        if let Some(item) = self.carry.take() {
            self.add(item);
        }
    }

    fn answered(&mut self, answer: Result<(Flushed, u64), tokio::task::JoinError>) {
        let (flushed, round) = answer.unwrap_or_else(|err| {
            tracing::error!(error = %err, "a batched call panicked");
            (Flushed::Failed, self.concurrency.round())
        });
        self.concurrency.answered(flushed, round);
        let limit = self.concurrency.limit();
        if self.shown_limit.swap(limit, Ordering::Relaxed) != limit {
            self.gauges.limit.set(limit as f64);
        }
        self.gauges.in_flight.set(self.calls.len() as f64);
    }
}
