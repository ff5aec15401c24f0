//! A network's round trip, simulated: `--latency` and `--jitter` delay every SQS and STS answer
//! (not the control endpoints), so that a benchmark sees what real SQS costs in time (~5–30 ms
//! in-region, 60–100 ms cross-region) rather than the stand-in's microseconds.
//!
//! Each answer waits `latency + U[0, jitter)`: the latency is a floor (no answer comes sooner),
//! and the jitter only adds, so the mean delay is `latency + jitter / 2`. The wait comes after
//! the operation ran, before the answer is written: a message sent is visible at once (as when
//! the SQS front end has stored it and the answer is on its way), and a long poll returns as soon
//! as a message is visible, plus the delay. Every request waits on its own deadline, in its own
//! connection's task: delays overlap, nothing is serialized (the client's connections are the
//! only limit, as with real SQS).
//!
//! The deadlines are kept by one thread of their own (`Timer`), not by tokio's timer, because
//! tokio's rounds every sleep up to the millisecond and wakes up to ~1.5 ms late: `--latency 5ms`
//! answered in 6.4 ms. A thread waiting on a condition variable until the earliest deadline
//! wakes within tens of microseconds.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// The delay added to each SQS/STS answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latency {
    pub base: Duration,
    pub jitter: Duration,
}

impl Latency {
    /// One answer's delay: `base + U[0, jitter)`.
    pub fn sample(&self) -> Duration {
        if self.jitter.is_zero() {
            return self.base;
        }
        let jitter = rand::random_range(0..self.jitter.as_nanos() as u64);
        self.base + Duration::from_nanos(jitter)
    }

    /// Sleeps one answer's delay (nothing at all without latency or jitter).
    pub async fn wait(&self) {
        let delay = self.sample();
        if !delay.is_zero() {
            Timer::get().sleep(delay).await;
        }
    }
}

/// A deadline waiting in the `Timer`: ordered by its time, then by its arrival.
struct Deadline {
    at: Instant,
    sequence: u64,
    wake: oneshot::Sender<()>,
}

impl PartialEq for Deadline {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.sequence) == (other.at, other.sequence)
    }
}

impl Eq for Deadline {}

impl PartialOrd for Deadline {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Deadline {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.sequence).cmp(&(other.at, other.sequence))
    }
}

/// Wakes each waiter at its deadline: a heap of deadlines and one thread (started at the first
/// use, one per process) that sleeps until the earliest.
struct Timer {
    /// The deadlines, earliest on top, and the next sequence number.
    state: Mutex<(BinaryHeap<Reverse<Deadline>>, u64)>,
    changed: Condvar,
}

impl Timer {
    fn get() -> &'static Timer {
        static TIMER: OnceLock<&'static Timer> = OnceLock::new();
        TIMER.get_or_init(|| {
            let timer: &'static Timer = Box::leak(Box::new(Timer {
                state: Mutex::new((BinaryHeap::new(), 0)),
                changed: Condvar::new(),
            }));
            std::thread::Builder::new()
                .name("latency-timer".into())
                .spawn(move || timer.run())
                .expect("start the latency timer thread");
            timer
        })
    }

    async fn sleep(&self, delay: Duration) {
        let (wake, woken) = oneshot::channel();
        let at = Instant::now() + delay;
        {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let (heap, sequence) = &mut *state;
            let earliest = heap.peek().is_none_or(|Reverse(first)| at < first.at);
            heap.push(Reverse(Deadline {
                at,
                sequence: *sequence,
                wake,
            }));
            *sequence += 1;
            if earliest {
                self.changed.notify_one();
            }
        }
        let _ = woken.await;
    }

    fn run(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let now = Instant::now();
            while state.0.peek().is_some_and(|Reverse(first)| first.at <= now) {
                if let Some(Reverse(due)) = state.0.pop() {
                    let _ = due.wake.send(());
                }
            }
            state = match state.0.peek() {
                Some(Reverse(first)) => {
                    let left = first.at - now;
                    self.changed
                        .wait_timeout(state, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => self.changed.wait(state).unwrap_or_else(|e| e.into_inner()),
            };
        }
    }
}

/// A duration on the command line: a number with a unit, `20ms`, `1.5ms`, `250us`, `2s`, or a
/// bare `0`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("{text:?}: a unit is needed (us, ms or s), e.g. 20ms"))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?}: not a number followed by a unit"))?;
    let seconds = match unit.trim() {
        "us" | "µs" => number / 1e6,
        "ms" => number / 1e3,
        "s" => number,
        other => return Err(format!("{text:?}: unknown unit {other:?} (us, ms or s)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("20ms"), Ok(ms(20)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0ms"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("1.5ms"), Ok(Duration::from_micros(1500)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("2s"), Ok(ms(2000)));
        assert!(parse_duration("20").is_err());
        assert!(parse_duration("20m").is_err());
        assert!(parse_duration("ms").is_err());
        assert!(parse_duration("-5ms").is_err());
    }

    #[test]
    fn jitter_only_adds() {
        let latency = Latency {
            base: Duration::from_millis(20),
            jitter: Duration::from_millis(5),
        };
        let samples: Vec<Duration> = (0..1000).map(|_| latency.sample()).collect();
        assert!(samples.iter().all(|d| *d >= latency.base));
        assert!(samples.iter().all(|d| *d < latency.base + latency.jitter));
        // Spread over the range, not stuck at one end.
        let ms = Duration::from_millis;
        assert!(samples.iter().any(|d| *d < ms(21)));
        assert!(samples.iter().any(|d| *d >= ms(24)));
        let fixed = Latency {
            base: ms(7),
            jitter: Duration::ZERO,
        };
        assert_eq!(fixed.sample(), ms(7));
    }

    #[tokio::test]
    async fn the_timer_wakes_each_at_its_deadline() {
        // Registered out of order, all at once: each wakes no sooner than asked, and together
        // they take about the longest (300 ms), not the sum (730 ms). Long enough that a busy
        // shared machine cannot blur the two.
        let ms = Duration::from_millis;
        let started = Instant::now();
        let sleeps = [300, 50, 200, 50, 10, 120].map(|n| async move {
            let started = Instant::now();
            Timer::get().sleep(ms(n)).await;
            (ms(n), started.elapsed())
        });
        for (asked, took) in futures::future::join_all(sleeps).await {
            assert!(took >= asked, "{took:?} for {asked:?}");
        }
        let all = started.elapsed();
        assert!(all >= ms(300) && all < ms(600), "{all:?}");
    }
}
