//! The batcher against a fake call, in tokio's paused time: linger, the byte limit, drain, and
//! the concurrency controller.

use std::sync::Mutex;

use super::*;

const MS: Duration = Duration::from_millis(1);

/// An item: its number and its size.
type Item = (u32, usize);

/// A call that takes `latency`, records its batches and how many calls overlap, and answers
/// `Throttled` while `throttle` is set.
#[derive(Clone, Default)]
struct Fake(Arc<FakeState>);

#[derive(Default)]
struct FakeState {
    latency: Duration,
    limit: Option<usize>,
    throttle: std::sync::atomic::AtomicBool,
    /// Every batch, with when its call started.
    batches: Mutex<Vec<(Instant, Vec<u32>)>>,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

impl Fake {
    fn new(latency: Duration, limit: Option<usize>) -> Self {
        Fake(Arc::new(FakeState {
            latency,
            limit,
            ..FakeState::default()
        }))
    }

    fn batches(&self) -> Vec<(Instant, Vec<u32>)> {
        self.0.batches.lock().unwrap().clone()
    }

    fn entries(&self) -> usize {
        self.batches().iter().map(|(_, b)| b.len()).sum()
    }

    fn most_in_flight(&self) -> usize {
        self.0.most_in_flight.load(Ordering::SeqCst)
    }
}

impl Flush for Fake {
    type Item = Item;

    fn size(item: &Item) -> usize {
        item.1
    }

    fn limit(&self) -> usize {
        self.0.limit.unwrap_or(usize::MAX)
    }

    async fn flush(&self, batch: Vec<Item>) -> Flushed {
        let state = &self.0;
        let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        state.most_in_flight.fetch_max(now, Ordering::SeqCst);
        state
            .batches
            .lock()
            .unwrap()
            .push((Instant::now(), batch.iter().map(|i| i.0).collect()));
        tokio::time::sleep(state.latency).await;
        state.in_flight.fetch_sub(1, Ordering::SeqCst);
        if state.throttle.load(Ordering::SeqCst) {
            Flushed::Throttled
        } else {
            Flushed::Done
        }
    }
}

fn options(max_linger: Duration, initial: usize, max: usize) -> Options {
    Options {
        max_linger,
        initial_calls: initial,
        max_calls: max,
        capacity: 64,
        component: "test",
        name: "t".into(),
        operation: "Fake",
    }
}

/// Waits (in paused time) until `fake` has seen `entries` entries.
async fn until_flushed(fake: &Fake, entries: usize) {
    let give_up = Instant::now() + Duration::from_secs(60);
    while fake.entries() < entries {
        assert!(Instant::now() < give_up, "only {} entries", fake.entries());
        tokio::time::sleep(MS / 10).await;
    }
}

/// Submits `count` items as fast as the batcher takes them, from one task.
fn load(sender: Sender<Item>, count: u32) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for i in 0..count {
            sender.submit((i, 1)).await.unwrap();
        }
    })
}

#[tokio::test(start_paused = true)]
async fn a_lone_item_waits_at_most_the_linger_cap() {
    let fake = Fake::new(MS, None);
    let (sender, _batcher) = Batcher::start(fake.clone(), options(20 * MS, 4, 8));
    let start = Instant::now();
    sender.submit((1, 1)).await.unwrap();
    until_flushed(&fake, 1).await;
    let (at, batch) = &fake.batches()[0];
    assert_eq!(batch, &[1]);
    assert!(*at - start <= 20 * MS, "{:?}", *at - start);
}

#[tokio::test(start_paused = true)]
async fn ten_items_go_at_once() {
    let fake = Fake::new(MS, None);
    let (sender, _batcher) = Batcher::start(fake.clone(), options(20 * MS, 4, 8));
    let start = Instant::now();
    for i in 0..10 {
        sender.submit((i, 1)).await.unwrap();
    }
    until_flushed(&fake, 10).await;
    let batches = fake.batches();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].1.len(), 10);
    assert!(batches[0].0 - start < MS, "a full batch does not linger");
}

#[tokio::test(start_paused = true)]
async fn sparse_items_stop_lingering() {
    let fake = Fake::new(MS, None);
    let (sender, _batcher) = Batcher::start(fake.clone(), options(20 * MS, 4, 8));
    for i in 0..5 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        sender.submit((i, 1)).await.unwrap();
    }
    until_flushed(&fake, 5).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let start = Instant::now();
    sender.submit((9, 1)).await.unwrap();
    until_flushed(&fake, 6).await;
    let (at, _) = fake.batches()[5];
    assert!(
        at - start < MS,
        "waited {:?} though arrivals stopped",
        at - start
    );
}

#[tokio::test(start_paused = true)]
async fn the_byte_limit_splits_batches() {
    let fake = Fake::new(MS, Some(100));
    let (sender, _batcher) = Batcher::start(fake.clone(), options(2 * MS, 4, 8));
    for i in 0..5 {
        sender.submit((i, 40)).await.unwrap();
    }
    until_flushed(&fake, 5).await;
    let sizes: Vec<usize> = fake.batches().iter().map(|(_, b)| b.len()).collect();
    assert_eq!(sizes, [2, 2, 1]);
    // In order, none lost or repeated.
    let order: Vec<u32> = fake.batches().into_iter().flat_map(|(_, b)| b).collect();
    assert_eq!(order, [0, 1, 2, 3, 4]);
}

#[tokio::test(start_paused = true)]
async fn close_flushes_what_was_accepted_then_refuses() {
    let fake = Fake::new(5 * MS, None);
    let (sender, batcher) = Batcher::start(fake.clone(), options(20 * MS, 2, 2));
    for i in 0..25 {
        sender.submit((i, 1)).await.unwrap();
    }
    let start = Instant::now();
    assert!(batcher.drain(start + Duration::from_secs(5)).await);
    assert_eq!(fake.entries(), 25);
    assert!(Instant::now() - start < 20 * MS, "no lingering on close");
    let refused = sender.submit((99, 1)).await;
    assert!(matches!(refused, Err(Closed((99, 1)))));
    // Draining again returns at once.
    assert!(batcher.drain(Instant::now()).await);
}

#[tokio::test(start_paused = true)]
async fn a_submit_waiting_for_room_fails_on_close() {
    let fake = Fake::new(Duration::from_secs(1), None);
    let mut opts = options(20 * MS, 1, 1);
    opts.capacity = 1;
    let (sender, batcher) = Batcher::start(fake.clone(), opts);
    let writer = load(sender.clone(), 1000);
    tokio::time::sleep(10 * MS).await;
    batcher.close();
    let result = tokio::time::timeout(Duration::from_secs(30), writer).await;
    assert!(
        result.expect("no hang").is_err(),
        "the writer's submit failed"
    );
    assert!(
        batcher
            .drain(Instant::now() + Duration::from_secs(30))
            .await
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_every_sender_drains_too() {
    let fake = Fake::new(MS, None);
    let (sender, batcher) = Batcher::start(fake.clone(), options(20 * MS, 1, 1));
    for i in 0..3 {
        sender.submit((i, 1)).await.unwrap();
    }
    drop(sender);
    batcher.finished.cancelled().await;
    assert_eq!(fake.entries(), 3);
}

#[tokio::test(start_paused = true)]
async fn sustained_load_fills_batches_and_raises_concurrency_up_to_the_ceiling() {
    let fake = Fake::new(20 * MS, None);
    // A queue longer than a round of calls carries (as the settler's and the target's are).
    let mut opts = options(20 * MS, 2, 12);
    opts.capacity = 1024;
    let (sender, batcher) = Batcher::start(fake.clone(), opts);
    let writer = load(sender, 20_000);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(batcher.concurrency_limit(), 12);
    writer.await.unwrap();
    assert!(batcher.drain(Instant::now() + Duration::from_secs(5)).await);
    assert_eq!(fake.entries(), 20_000);
    assert_eq!(
        fake.most_in_flight(),
        12,
        "the ceiling, reached and respected"
    );
    let batches = fake.batches();
    let full = batches
        .iter()
        .filter(|(_, b)| b.len() == MAX_ENTRIES)
        .count();
    assert!(
        full * 100 >= batches.len() * 99,
        "{full} of {}",
        batches.len()
    );
}

#[tokio::test(start_paused = true)]
async fn throttling_lowers_concurrency_and_recovery_raises_it() {
    let fake = Fake::new(20 * MS, None);
    let (sender, batcher) = Batcher::start(fake.clone(), options(20 * MS, 16, 32));
    fake.0.throttle.store(true, Ordering::SeqCst);
    let writer = load(sender, 6_000);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(batcher.concurrency_limit(), 1, "halved down to the floor");
    assert!(fake.0.in_flight.load(Ordering::SeqCst) <= 1);
    fake.0.throttle.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        batcher.concurrency_limit() > 4,
        "{}",
        batcher.concurrency_limit()
    );
    writer.await.unwrap();
    assert!(batcher.drain(Instant::now() + Duration::from_secs(5)).await);
    assert_eq!(fake.entries(), 6_000);
}

#[tokio::test(start_paused = true)]
async fn light_load_keeps_concurrency_and_batches_small() {
    // 200 items a second, 20 ms calls: one call at a time carries it, and the limit does not
    // grow for nothing.
    let fake = Fake::new(20 * MS, None);
    let (sender, batcher) = Batcher::start(fake.clone(), options(20 * MS, 2, 64));
    for i in 0..200 {
        tokio::time::sleep(5 * MS).await;
        sender.submit((i, 1)).await.unwrap();
    }
    assert!(batcher.drain(Instant::now() + Duration::from_secs(5)).await);
    assert_eq!(batcher.concurrency_limit(), 2);
    assert!(fake.most_in_flight() <= 2);
    // Four per 20 ms: batches of about four, so about 50 calls, not 200.
    let calls = fake.batches().len();
    assert!((40..=70).contains(&calls), "{calls} calls");
}
