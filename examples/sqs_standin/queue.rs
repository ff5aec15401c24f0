//! One in-memory queue: messages, their visibility, receipt handles and long-poll wake-ups.
//!
//! Everything a call changes sits behind one `Mutex` per queue and every operation is O(1)
//! amortized (O(log n) for the timers): a `HashMap` of messages by sequence number, a
//! `VecDeque` of the visible ones in order (entries left behind by a delete are skipped when
//! they reach the front), and a min-heap of visibility deadlines (entries left behind by a
//! delete or a visibility change are skipped when they expire, and dropped in one pass when
//! they outnumber the live ones). Nothing runs in the background: expired deadlines are applied
//! by the next call that looks, and a waiting long poll sleeps until the earliest deadline.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::time::Instant;

/// A message attribute as the JSON protocol carries it (binary values in base64).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AttributeValue {
    pub data_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub string_value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binary_value: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub string_list_values: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub binary_list_values: Vec<String>,
}

/// Message attributes by name, sorted (the order the MD5 digest needs).
pub type Attributes = BTreeMap<String, AttributeValue>;

/// What a sender hands over; [`Queue::send`] stamps the rest.
pub struct NewMessage {
    pub body: Arc<str>,
    pub md5_of_body: Arc<str>,
    /// The attributes and the MD5 of all of them.
    pub attributes: Option<Arc<(Attributes, String)>>,
    pub delay: Duration,
    pub group_id: Option<Arc<str>>,
    pub deduplication_id: Option<Arc<str>>,
}

/// The answer to one sent message.
pub struct Sent {
    pub message_id: Arc<str>,
    pub sequence_number: Option<String>,
}

/// One received message, copied out of the lock (cheap `Arc` clones) to be serialized.
pub struct Received {
    pub message_id: Arc<str>,
    pub receipt_handle: String,
    pub body: Arc<str>,
    pub md5_of_body: Arc<str>,
    pub attributes: Option<Arc<(Attributes, String)>>,
    pub sent_ms: u64,
    pub first_receive_ms: u64,
    pub receive_count: u32,
    pub group_id: Option<Arc<str>>,
    pub deduplication_id: Option<Arc<str>>,
    pub sequence_number: Option<Arc<str>>,
}

/// Why a receipt handle was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptError {
    /// Malformed, of a deleted message, or superseded by a later receive.
    Invalid,
    /// Valid, but the message is not in flight (its visibility already expired).
    NotInFlight,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Visible,
    /// Received; hidden until the deadline.
    InFlight(Instant),
    /// Sent with a delay; hidden until the deadline.
    Delayed(Instant),
}

struct Message {
    id: Arc<str>,
    body: Arc<str>,
    md5_of_body: Arc<str>,
    attributes: Option<Arc<(Attributes, String)>>,
    group_id: Option<Arc<str>>,
    deduplication_id: Option<Arc<str>>,
    sequence_number: Option<Arc<str>>,
    sent_ms: u64,
    first_receive_ms: u64,
    receive_count: u32,
    /// The token of the latest receipt handle (0: never received). Only the latest is valid.
    receipt: u64,
    state: State,
}

#[derive(Default)]
struct Inner {
    messages: HashMap<u64, Message>,
    /// Sequence numbers of visible messages, oldest first (may hold deleted ones).
    visible: VecDeque<u64>,
    /// (deadline, sequence number) of in-flight and delayed messages (may hold stale entries).
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    n_visible: usize,
    n_in_flight: usize,
    n_delayed: usize,
    /// FIFO queues: the last sequence number given.
    fifo_sequence: u128,
}

/// Counters of one queue (all monotonic).
#[derive(Default)]
pub struct Counters {
    /// Messages sent by clients (SendMessage, SendMessageBatch).
    pub sent: AtomicU64,
    /// Messages added by `--preload` or `POST /preload`.
    pub preloaded: AtomicU64,
    /// Messages handed out by ReceiveMessage (a redelivery counts again).
    pub received: AtomicU64,
    pub deleted: AtomicU64,
    /// In-flight messages whose visibility timeout ran out (they will be delivered again).
    pub expired: AtomicU64,
    /// Visibility changes applied.
    pub visibility_changes: AtomicU64,
    /// Deletes and visibility changes refused for their receipt handle.
    pub invalid_receipts: AtomicU64,
    /// ReceiveMessage calls that returned no message.
    pub empty_receives: AtomicU64,
}

/// Queue attributes a client may set (CreateQueue) or read (GetQueueAttributes).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub visibility_timeout: u32,
    pub receive_wait_seconds: u32,
    pub max_message_size: usize,
    /// Answer sends as usual but keep nothing (send-only benchmarks: flat memory).
    pub discard_sent: bool,
}

pub struct Queue {
    pub name: String,
    pub account: String,
    pub arn: String,
    pub fifo: bool,
    pub created_s: u64,
    pub settings: Settings,
    pub counters: Counters,
    inner: Mutex<Inner>,
    /// Wakes waiting long polls when messages become visible.
    arrived: Notify,
}

/// Sequence numbers are unique across queues, so a receipt handle of one queue is unknown to
/// every other.
static NEXT_SEQUENCE: AtomicU64 = AtomicU64::new(1);

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A random RFC 4122 (version 4) UUID.
pub fn uuid() -> String {
    let bits: u128 = rand::random();
    let bits = (bits & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// `<sequence><token>` in hex, plus some base64-looking padding so it looks like (and is about
/// as long as) a real one. Only the first 32 characters are read back.
fn receipt_handle(sequence: u64, token: u64) -> String {
    format!("{sequence:016x}{token:016x}AQEBstandin")
}

fn parse_receipt(handle: &str) -> Option<(u64, u64)> {
    let sequence = u64::from_str_radix(handle.get(..16)?, 16).ok()?;
    let token = u64::from_str_radix(handle.get(16..32)?, 16).ok()?;
    Some((sequence, token))
}

impl Queue {
    pub fn new(name: &str, account: &str, region: &str, settings: Settings) -> Queue {
        Queue {
            name: name.to_string(),
            account: account.to_string(),
            arn: format!("arn:aws:sqs:{region}:{account}:{name}"),
            fifo: name.ends_with(".fifo"),
            created_s: now_ms() / 1000,
            settings,
            counters: Counters::default(),
            inner: Mutex::new(Inner::default()),
            arrived: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent-enough state for a test tool.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds messages (in order); `preloaded` selects the counter.
    pub fn send(&self, messages: Vec<NewMessage>, preloaded: bool) -> Vec<Sent> {
        let discard = self.settings.discard_sent && !preloaded;
        let count = messages.len() as u64;
        let sent_ms = now_ms();
        let now = Instant::now();
        let first = NEXT_SEQUENCE.fetch_add(count, Ordering::Relaxed);
        let mut out = Vec::with_capacity(messages.len());
        let mut any_visible = false;
        {
            let mut inner = self.lock();
            inner.messages.reserve(messages.len());
            for (offset, new) in messages.into_iter().enumerate() {
                let sequence = first + offset as u64;
                let id: Arc<str> = uuid().into();
                let fifo_sequence = self.fifo.then(|| {
                    inner.fifo_sequence += 1;
                    format!(
                        "{:020}",
                        18_000_000_000_000_000_000u128 + inner.fifo_sequence
                    )
                });
                if discard {
                    out.push(Sent {
                        message_id: id,
                        sequence_number: fifo_sequence,
                    });
                    continue;
                }
                let state = if new.delay.is_zero() || self.fifo {
                    inner.visible.push_back(sequence);
                    inner.n_visible += 1;
                    any_visible = true;
                    State::Visible
                } else {
                    let until = now + new.delay;
                    inner.timers.push(Reverse((until, sequence)));
                    inner.n_delayed += 1;
                    State::Delayed(until)
                };
                inner.messages.insert(
                    sequence,
                    Message {
                        id: id.clone(),
                        body: new.body,
                        md5_of_body: new.md5_of_body,
                        attributes: new.attributes,
                        group_id: new.group_id,
                        deduplication_id: new.deduplication_id,
                        sequence_number: fifo_sequence.clone().map(Into::into),
                        sent_ms,
                        first_receive_ms: 0,
                        receive_count: 0,
                        receipt: 0,
                        state,
                    },
                );
                out.push(Sent {
                    message_id: id,
                    sequence_number: fifo_sequence,
                });
            }
        }
        let counter = if preloaded {
            &self.counters.preloaded
        } else {
            &self.counters.sent
        };
        counter.fetch_add(count, Ordering::Relaxed);
        if any_visible {
            self.arrived.notify_waiters();
        }
        out
    }

    /// ReceiveMessage: up to `max` messages, waiting up to `wait` for the first one.
    pub async fn receive(&self, max: usize, visibility: Duration, wait: Duration) -> Vec<Received> {
        let give_up = Instant::now() + wait;
        loop {
            // Registered before looking, so a send between the look and the wait is not missed.
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            let now = Instant::now();
            let (received, next_timer) = {
                let mut inner = self.lock();
                self.expire(&mut inner, now);
                let received = self.take(&mut inner, now, max, visibility);
                (received, inner.timers.peek().map(|Reverse((t, _))| *t))
            };
            if !received.is_empty() {
                let count = received.len() as u64;
                self.counters.received.fetch_add(count, Ordering::Relaxed);
                return received;
            }
            if now >= give_up {
                self.counters.empty_receives.fetch_add(1, Ordering::Relaxed);
                return received;
            }
            let wake = next_timer.map_or(give_up, |t| t.min(give_up));
            tokio::select! {
                () = arrived => {}
                () = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    fn take(
        &self,
        inner: &mut Inner,
        now: Instant,
        max: usize,
        visibility: Duration,
    ) -> Vec<Received> {
        let mut out = Vec::with_capacity(max.min(inner.n_visible));
        let until = now + visibility;
        let received_ms = now_ms();
        while out.len() < max {
            let Some(sequence) = inner.visible.pop_front() else {
                break;
            };
            let Some(message) = inner.messages.get_mut(&sequence) else {
                continue; // deleted while visible
            };
            if message.state != State::Visible {
                continue;
            }
            let token = rand::random::<u64>().max(1); // 0 means "never received"
            message.state = State::InFlight(until);
            message.receipt = token;
            message.receive_count += 1;
            if message.first_receive_ms == 0 {
                message.first_receive_ms = received_ms;
            }
            out.push(Received {
                message_id: message.id.clone(),
                receipt_handle: receipt_handle(sequence, token),
                body: message.body.clone(),
                md5_of_body: message.md5_of_body.clone(),
                attributes: message.attributes.clone(),
                sent_ms: message.sent_ms,
                first_receive_ms: message.first_receive_ms,
                receive_count: message.receive_count,
                group_id: message.group_id.clone(),
                deduplication_id: message.deduplication_id.clone(),
                sequence_number: message.sequence_number.clone(),
            });
            inner.timers.push(Reverse((until, sequence)));
            inner.n_visible -= 1;
            inner.n_in_flight += 1;
        }
        out
    }

    /// Applies every deadline that has passed: in-flight and delayed messages become visible.
    /// Returns how many did.
    fn expire(&self, inner: &mut Inner, now: Instant) -> usize {
        let mut made_visible = 0;
        let mut expired = 0;
        while let Some(&Reverse((deadline, sequence))) = inner.timers.peek() {
            if deadline > now {
                break;
            }
            inner.timers.pop();
            let Some(message) = inner.messages.get_mut(&sequence) else {
                continue; // deleted meanwhile
            };
            match message.state {
                State::InFlight(until) if until == deadline => {
                    inner.n_in_flight -= 1;
                    expired += 1;
                }
                State::Delayed(until) if until == deadline => inner.n_delayed -= 1,
                _ => continue, // a stale entry: the deadline was changed
            }
            message.state = State::Visible;
            inner.visible.push_back(sequence);
            inner.n_visible += 1;
            made_visible += 1;
        }
        if expired > 0 {
            self.counters.expired.fetch_add(expired, Ordering::Relaxed);
        }
        // Deletes and visibility changes leave entries behind: drop them once they outnumber
        // the live ones (amortized O(1) per stale entry).
        let live = inner.n_in_flight + inner.n_delayed;
        if inner.timers.len() > 2 * live + 1024 {
            let Inner {
                timers, messages, ..
            } = inner;
            timers.retain(|Reverse((deadline, sequence))| {
                messages.get(sequence).is_some_and(|m| match m.state {
                    State::InFlight(until) | State::Delayed(until) => until == *deadline,
                    State::Visible => false,
                })
            });
        }
        made_visible
    }

    /// Looks a receipt handle up: the message's sequence number if it is the latest receipt.
    fn find(inner: &Inner, handle: &str) -> Result<u64, ReceiptError> {
        let (sequence, token) = parse_receipt(handle).ok_or(ReceiptError::Invalid)?;
        match inner.messages.get(&sequence) {
            Some(message) if message.receipt == token && token != 0 => Ok(sequence),
            _ => Err(ReceiptError::Invalid),
        }
    }

    /// DeleteMessage(Batch): one result per handle, in order. The latest receipt handle of a
    /// message deletes it, in flight or visible again (as in SQS); an older one, or one of a
    /// deleted message, is `Invalid`.
    pub fn delete(&self, handles: &[&str]) -> Vec<Result<(), ReceiptError>> {
        let mut results = Vec::with_capacity(handles.len());
        {
            let mut inner = self.lock();
            for handle in handles {
                let result = Self::find(&inner, handle).map(|sequence| {
                    if let Some(message) = inner.messages.remove(&sequence) {
                        match message.state {
                            State::Visible => inner.n_visible -= 1,
                            State::InFlight(_) => inner.n_in_flight -= 1,
                            State::Delayed(_) => inner.n_delayed -= 1,
                        }
                    }
                });
                results.push(result);
            }
        }
        self.count_results(&results, &self.counters.deleted);
        results
    }

    /// ChangeMessageVisibility(Batch): the message becomes visible `seconds` from now (0: at
    /// once). Only an in-flight message with its latest receipt handle can be changed.
    pub fn change_visibility(&self, changes: &[(&str, u32)]) -> Vec<Result<(), ReceiptError>> {
        self.change_visibility_at(changes, Instant::now())
    }

    fn change_visibility_at(
        &self,
        changes: &[(&str, u32)],
        now: Instant,
    ) -> Vec<Result<(), ReceiptError>> {
        let mut results = Vec::with_capacity(changes.len());
        let mut made_visible = false;
        {
            let mut inner = self.lock();
            self.expire(&mut inner, now);
            for (handle, seconds) in changes {
                let result = Self::find(&inner, handle).and_then(|sequence| {
                    let inner = &mut *inner;
                    let message = inner
                        .messages
                        .get_mut(&sequence)
                        .ok_or(ReceiptError::Invalid)?;
                    if !matches!(message.state, State::InFlight(_)) {
                        return Err(ReceiptError::NotInFlight);
                    }
                    if *seconds == 0 {
                        message.state = State::Visible;
                        inner.visible.push_back(sequence);
                        inner.n_in_flight -= 1;
                        inner.n_visible += 1;
                        made_visible = true;
                    } else {
                        let until = now + Duration::from_secs(u64::from(*seconds));
                        message.state = State::InFlight(until);
                        inner.timers.push(Reverse((until, sequence)));
                    }
                    Ok(())
                });
                results.push(result);
            }
        }
        self.count_results(&results, &self.counters.visibility_changes);
        if made_visible {
            self.arrived.notify_waiters();
        }
        results
    }

    fn count_results(&self, results: &[Result<(), ReceiptError>], ok_counter: &AtomicU64) {
        let ok = results.iter().filter(|r| r.is_ok()).count() as u64;
        let invalid = results.len() as u64 - ok;
        if ok > 0 {
            ok_counter.fetch_add(ok, Ordering::Relaxed);
        }
        if invalid > 0 {
            self.counters
                .invalid_receipts
                .fetch_add(invalid, Ordering::Relaxed);
        }
    }

    /// PurgeQueue: drops every message.
    pub fn purge(&self) {
        let mut inner = self.lock();
        let fifo_sequence = inner.fifo_sequence;
        *inner = Inner {
            fifo_sequence,
            ..Inner::default()
        };
    }

    /// (visible, in flight, delayed), after applying the deadlines that have passed.
    pub fn depth(&self) -> (usize, usize, usize) {
        self.depth_at(Instant::now())
    }

    fn depth_at(&self, now: Instant) -> (usize, usize, usize) {
        let made_visible;
        let depth = {
            let mut inner = self.lock();
            made_visible = self.expire(&mut inner, now);
            (inner.n_visible, inner.n_in_flight, inner.n_delayed)
        };
        if made_visible > 0 {
            self.arrived.notify_waiters();
        }
        depth
    }
}

#[cfg(test)]
mod tests {
    //! Time is passed in (`now + N s`) rather than slept through.

    use super::*;

    fn queue() -> Queue {
        Queue::new(
            "q",
            "123456789012",
            "us-east-1",
            Settings {
                visibility_timeout: 30,
                receive_wait_seconds: 0,
                max_message_size: 262_144,
                discard_sent: false,
            },
        )
    }

    fn message(body: &str) -> NewMessage {
        NewMessage {
            body: body.into(),
            md5_of_body: "".into(),
            attributes: None,
            delay: Duration::ZERO,
            group_id: None,
            deduplication_id: None,
        }
    }

    /// A receive without waiting, at `now`.
    fn receive_at(q: &Queue, now: Instant, max: usize, visibility: u64) -> Vec<Received> {
        let mut inner = q.lock();
        q.expire(&mut inner, now);
        q.take(&mut inner, now, max, Duration::from_secs(visibility))
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn receipts() {
        assert_eq!(
            parse_receipt(&receipt_handle(7, u64::MAX)),
            Some((7, u64::MAX))
        );
        assert_eq!(parse_receipt("short"), None);
        assert_eq!(parse_receipt("zz000000000000000000000000000000000"), None);
        let id = uuid();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
    }

    #[test]
    fn visibility_expires_and_old_receipts_die() {
        let q = queue();
        let t0 = Instant::now();
        q.send(vec![message("a"), message("b")], false);
        let first = receive_at(&q, t0, 10, 5);
        assert_eq!(first.len(), 2);
        assert_eq!(first[0].receive_count, 1);
        assert_eq!(q.depth_at(t0), (0, 2, 0));
        assert_eq!(q.depth_at(t0 + secs(6)), (2, 0, 0));
        assert_eq!(q.counters.expired.load(Ordering::Relaxed), 2);
        // Not yet received again: the latest handle still deletes (as in SQS).
        assert_eq!(q.delete(&[&first[0].receipt_handle]), vec![Ok(())]);
        let second = receive_at(&q, t0 + secs(6), 10, 5);
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].receive_count, 2);
        assert_ne!(second[0].receipt_handle, first[1].receipt_handle);
        assert_eq!(
            q.delete(&[&first[1].receipt_handle, &second[0].receipt_handle]),
            vec![Err(ReceiptError::Invalid), Ok(())]
        );
        assert_eq!(
            q.delete(&[&second[0].receipt_handle]),
            vec![Err(ReceiptError::Invalid)]
        );
        assert_eq!(q.depth_at(t0 + secs(6)), (0, 0, 0));
    }

    #[test]
    fn change_visibility() {
        let q = queue();
        let t0 = Instant::now();
        q.send(vec![message("a")], false);
        let got = receive_at(&q, t0, 1, 30);
        let handle = got[0].receipt_handle.as_str();
        assert_eq!(q.change_visibility_at(&[(handle, 100)], t0), vec![Ok(())]);
        assert_eq!(
            q.depth_at(t0 + secs(31)),
            (0, 1, 0),
            "the old deadline is stale"
        );
        assert_eq!(q.depth_at(t0 + secs(101)), (1, 0, 0));
        assert_eq!(
            q.change_visibility_at(&[(handle, 0)], t0 + secs(101)),
            vec![Err(ReceiptError::NotInFlight)]
        );
        let got = receive_at(&q, t0 + secs(101), 1, 30);
        let handle = got[0].receipt_handle.as_str();
        assert_eq!(
            q.change_visibility_at(&[(handle, 0)], t0 + secs(102)),
            vec![Ok(())]
        );
        assert_eq!(q.depth_at(t0 + secs(102)), (1, 0, 0));
        assert_eq!(receive_at(&q, t0 + secs(102), 1, 30)[0].receive_count, 3);
    }

    #[tokio::test]
    async fn delayed_messages_wake_a_long_poll() {
        let q = queue();
        let mut delayed = message("later");
        delayed.delay = secs(1);
        let started = Instant::now();
        q.send(vec![delayed], false);
        assert_eq!(q.depth(), (0, 0, 1));
        let got = q.receive(10, secs(30), secs(5)).await;
        let waited = started.elapsed();
        assert_eq!(got.len(), 1);
        assert!(
            waited >= Duration::from_millis(990) && waited < secs(3),
            "{waited:?}"
        );
        assert_eq!(&*got[0].body, "later");
    }

    #[tokio::test]
    async fn a_send_wakes_a_long_poll() {
        let q = Arc::new(queue());
        let waiting = tokio::spawn({
            let q = q.clone();
            async move { q.receive(10, secs(30), secs(10)).await.len() }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        q.send(vec![message("a"), message("b")], false);
        assert_eq!(waiting.await.unwrap(), 2);
        assert!(started.elapsed() < secs(1));
        assert_eq!(q.counters.received.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn stale_timers_are_dropped() {
        let q = queue();
        let t0 = Instant::now();
        let n = 3000;
        q.send((0..n).map(|_| message("x")).collect(), false);
        for _ in 0..n / 10 {
            let got = receive_at(&q, t0, 10, 30);
            let handles: Vec<&str> = got.iter().map(|m| m.receipt_handle.as_str()).collect();
            assert!(q.delete(&handles).iter().all(Result::is_ok));
        }
        assert_eq!(q.depth_at(t0), (0, 0, 0));
        assert!(q.lock().timers.len() <= 1024 + 10);
    }
}
