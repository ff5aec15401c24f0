//! How many `ReceiveMessage` long polls run at once: a small controller over the number of
//! pollers, bounded by Little's law.
//!
//! At real SQS latency a source's rate is set by its receives in flight (Little's law:
//! events/s = concurrent receives × messages per receive ÷ call latency), so a fixed number of
//! pollers tuned on loopback caps it: two pollers at 20 ms move at most 1,000 messages/s. The
//! controller lets the queue say how many are needed:
//!
//! - a receive that comes back **full** (as many messages as a whole batch, and every one it
//!   asked for) while in-flight capacity is still free means the backlog may outrun the
//!   pollers: one more poller starts, **if** the pollers are no more than one above what the
//!   rate they bring in needs (below);
//! - a receive that comes back **empty or partial** means the pollers outrun the queue: that
//!   poller stops, unless it is the last one;
//! - errors change nothing (the poller backs off instead).
//!
//! The bound: sustaining the current rate `R` (messages received per second, a moving
//! average over a few round trips) at the latency `L` of a full receive takes `R × L ÷ batch`
//! receives in flight. `L` is the service's own latency, the lowest measured over the last
//! 10–20 s: queueing in the adapter (a CPU-bound adapter's receives take 30 ms at loopback
//! latency) does not call for more receives, more of them only add to it. The controller
//! allows half as many again, for SQS's varying latency, plus one (`⌈1.5 × R × L ÷ batch⌉ +
//! 1`), so each extra poller is a probe: when it raises the rate (the pollers were the limit),
//! the bound rises with it, about one poller per round trip; when it does not (the CPU or the
//! sink is the limit), the bound stays and growth stops. A full receive by a poller two or
//! more above the bound stops that poller, so an overshoot shrinks back. Measured on this
//! machine: at 0 ms two pollers keep up with the CPU, and the sixteen to nineteen an average
//! latency let in cost a quarter more CPU per event (BENCHMARKS.md).
//!
//! The count stays between one and `max`; an idle queue thus costs one long poll per wait time
//! (three receives a minute at 20 s) for the one poller left. When capacity is the limit (no
//! free in-flight slot), nothing grows: more receives could not start more work. An explicit
//! `receive.pollers` pins the count (`min == max`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use metrics::Gauge;
use tokio::time::Instant;

/// Weight of the newest full receive's latency in its moving average.
const LATENCY_WEIGHT: f64 = 0.25;
/// The base latency is the lowest of the last two windows of this length.
const MIN_LATENCY_WINDOW: Duration = Duration::from_secs(10);
/// Pollers allowed beyond what the rate needs at the base latency, as a factor: SQS's latency
/// varies (5–30 ms in-region), and the base is its low end.
const HEADROOM: f64 = 1.5;
/// The rate is averaged over this many receive latencies (and at least `MIN_RATE_WINDOW`).
const RATE_WINDOW_LATENCIES: f64 = 4.0;
const MIN_RATE_WINDOW: Duration = Duration::from_millis(50);

/// What a poller does after a receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Receive again.
    Continue,
    /// Receive again, and start one more poller.
    Grow,
    /// Stop: there are more pollers than the queue needs.
    Stop,
}

/// One receive, as the controller sees it.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    /// Messages asked for, and got.
    pub asked: usize,
    pub got: usize,
    /// Messages in a whole batch (`maxMessages`, or fewer when `maxInFlightMessages` is lower).
    pub batch: usize,
    /// From the call's start to its answer.
    pub latency: Duration,
    /// Whether an in-flight slot was still free after the messages were handed out.
    pub capacity_free: bool,
}

/// The number of pollers, shared by them.
pub struct Pollers {
    active: AtomicUsize,
    min: usize,
    max: usize,
    gauge: Gauge,
    /// Held only for arithmetic, never across a call.
    estimate: Mutex<Estimate>,
}

/// What Little's law needs: the rate messages come in at, and a full receive's latency.
#[derive(Debug, Default)]
struct Estimate {
    /// Messages per second, decaying with a time constant of a few latencies.
    rate: f64,
    /// Seconds a full receive takes (moving average); `None` until one was measured.
    latency: Option<f64>,
    /// The lowest full-receive latency of the current and of the previous window: the
    /// service's own latency without the queueing the pollers themselves cause (at loopback
    /// latency a CPU-bound adapter's receives take 30 ms, and more pollers only add to it).
    min_current: Option<f64>,
    min_previous: Option<f64>,
    window_start: Option<Instant>,
    last: Option<Instant>,
}

impl Estimate {
    /// Counts `got` messages received at `now` by a call that took `latency` (`full`: it
    /// returned a whole batch, so it did not wait in a long poll).
    fn received(&mut self, now: Instant, got: usize, latency: Duration, full: bool) {
        if full {
            let sample = latency.as_secs_f64();
            self.latency = Some(match self.latency {
                Some(average) => average + LATENCY_WEIGHT * (sample - average),
                None => sample,
            });
            let start = *self.window_start.get_or_insert(now);
            if now.saturating_duration_since(start) >= MIN_LATENCY_WINDOW {
                self.min_previous = self.min_current.take();
                self.window_start = Some(now);
            }
            self.min_current = Some(self.min_current.map_or(sample, |min| min.min(sample)));
        }
        let window = self.window();
        let elapsed = self.last.map_or(0.0, |last| {
            now.saturating_duration_since(last).as_secs_f64()
        });
        self.rate = self.rate * (-elapsed / window).exp() + got as f64 / window;
        self.last = Some(now);
    }

    fn window(&self) -> f64 {
        let latency = self.latency.unwrap_or(0.0);
        (RATE_WINDOW_LATENCIES * latency).max(MIN_RATE_WINDOW.as_secs_f64())
    }

    /// The service's latency without queueing: the lowest of the last two windows.
    fn base_latency(&self) -> f64 {
        match (self.min_current, self.min_previous) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(0.0),
        }
    }

    /// Pollers allowed: what the current rate needs at the base latency, with headroom, plus
    /// one to probe for more.
    fn bound(&self, batch: usize) -> usize {
        let needed = self.rate * self.base_latency() * HEADROOM / batch.max(1) as f64;
        needed.ceil() as usize + 1
    }
}

impl Pollers {
    /// `initial` pollers (clamped to `min..=max`), with the bounds given.
    pub fn new(initial: usize, min: usize, max: usize, gauge: Gauge) -> Pollers {
        let max = max.max(1);
        let min = min.clamp(1, max);
        let initial = initial.clamp(min, max);
        gauge.set(initial as f64);
        Pollers {
            active: AtomicUsize::new(initial),
            min,
            max,
            gauge,
            estimate: Mutex::new(Estimate::default()),
        }
    }

    /// Pollers to start with.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// The decision after a receive that asked for `asked` messages (a whole batch is `batch`),
    /// got `got` at `now`, and took `latency`; `capacity_free` tells whether an in-flight slot
    /// is still free. `Grow` and `Stop` have already been counted when returned.
    pub fn after_receive(&self, receive: Received, now: Instant) -> Next {
        let Received {
            asked,
            got,
            batch,
            latency,
            capacity_free,
        } = receive;
        let full = got >= asked && asked >= batch;
        let bound = {
            let mut estimate = self.estimate.lock().unwrap_or_else(|e| e.into_inner());
            estimate.received(now, got, latency, full);
            estimate.bound(batch)
        };
        if full {
            let active = self.active.load(Ordering::Relaxed);
            if capacity_free && active < bound {
                return self.grow();
            }
            if active > bound + 1 {
                return self.shrink();
            }
        } else if got < asked {
            return self.shrink();
        }
        Next::Continue
    }

    fn grow(&self) -> Next {
        let grown = self
            .active
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.max).then_some(n + 1)
            });
        if grown.is_ok() {
            self.gauge.increment(1.0);
            return Next::Grow;
        }
        Next::Continue
    }

    fn shrink(&self) -> Next {
        let shrunk = self
            .active
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n > self.min).then_some(n - 1)
            });
        if shrunk.is_ok() {
            self.gauge.decrement(1.0);
            return Next::Stop;
        }
        Next::Continue
    }

    /// A poller ended for another reason (shutdown): it no longer counts.
    pub fn stopped(&self) {
        let stopped = self
            .active
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        if stopped.is_ok() {
            self.gauge.decrement(1.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn pollers(initial: usize, min: usize, max: usize) -> Pollers {
        Pollers::new(initial, min, max, Gauge::noop())
    }

    fn receive(asked: usize, got: usize, latency: Duration, capacity_free: bool) -> Received {
        Received {
            asked,
            got,
            batch: 10,
            latency,
            capacity_free,
        }
    }

    /// Runs the pollers for `duration` against a queue with a backlog: every receive is full and
    /// takes `latency`; a poller's cycle is the latency plus 1 ms of its own, or longer when the
    /// rest of the adapter cannot process more than `cpu_limit` messages a second (the pollers
    /// share that rate). Returns the number of pollers at the end.
    fn run(p: &Pollers, latency: Duration, cpu_limit: f64, duration: Duration) -> usize {
        run_with(p, |_| latency, cpu_limit, duration)
    }

    /// Like [`run`], with the `n`th receive taking `latency(n)`.
    fn run_with(
        p: &Pollers,
        latency: impl Fn(usize) -> Duration,
        cpu_limit: f64,
        duration: Duration,
    ) -> usize {
        let start = Instant::now();
        let mut n = 0;
        // When each poller's receive answers.
        let mut due: Vec<Instant> = (0..p.active() as u32)
            .map(|i| start + latency(0) + i * MS)
            .collect();
        while let Some((index, &now)) = due.iter().enumerate().min_by_key(|(_, at)| **at) {
            if now - start > duration {
                break;
            }
            n += 1;
            let latency = latency(n);
            let cycle =
                (latency + MS).max(Duration::from_secs_f64(due.len() as f64 * 10.0 / cpu_limit));
            match p.after_receive(receive(10, 10, latency, true), now) {
                Next::Continue => due[index] = now + cycle,
                Next::Grow => {
                    due[index] = now + cycle;
                    due.push(now + latency);
                }
                Next::Stop => {
                    due.swap_remove(index);
                }
            }
        }
        p.active()
    }

    #[test]
    fn at_latency_the_pollers_grow_while_the_rate_follows_up_to_the_ceiling() {
        let p = pollers(1, 1, 16);
        // 16 pollers at 20 ms bring in 7,600 messages/s: below what the CPU allows here.
        assert_eq!(run(&p, 20 * MS, 20_000.0, Duration::from_secs(2)), 16);
    }

    #[test]
    fn a_rate_the_cpu_caps_stops_growth_at_what_it_needs_with_headroom() {
        let p = pollers(1, 1, 64);
        // 6,000/s at 20 ms needs 12 receives in flight: 18 with headroom, 19 allowed.
        let active = run(&p, 20 * MS, 6_000.0, Duration::from_secs(3));
        assert!((17..=20).contains(&active), "{active} pollers");
    }

    #[test]
    fn queueing_in_the_adapter_does_not_call_for_more_pollers() {
        // At loopback latency a CPU-bound adapter sees most receives take 30 ms; a few that
        // met no queue took 0.5 ms. Two or three pollers keep up with 8,000/s.
        let p = pollers(16, 1, 64);
        let latency = |n: usize| if n % 20 == 0 { MS / 2 } else { 30 * MS };
        let active = run_with(&p, latency, 8_000.0, Duration::from_secs(2));
        assert!(active <= 3, "{active} pollers");
    }

    #[test]
    fn at_loopback_latency_an_overshoot_shrinks_back() {
        // Sixteen pollers where one receive takes 0.3 ms: two keep up with 8,000/s.
        let p = pollers(16, 1, 64);
        let active = run(&p, MS * 3 / 10, 8_000.0, Duration::from_secs(1));
        assert!(active <= 3, "{active} pollers");
    }

    #[test]
    fn empty_or_partial_receives_stop_pollers_down_to_one() {
        let p = pollers(3, 1, 8);
        let now = Instant::now();
        assert_eq!(
            p.after_receive(receive(10, 0, 20 * MS, true), now),
            Next::Stop
        );
        assert_eq!(
            p.after_receive(receive(10, 4, 20 * MS, true), now),
            Next::Stop
        );
        assert_eq!(p.active(), 1);
        assert_eq!(
            p.after_receive(receive(10, 0, 20 * MS, true), now),
            Next::Continue,
            "the last one stays"
        );
        assert_eq!(p.active(), 1);
    }

    #[test]
    fn no_growth_when_capacity_is_the_limit() {
        let p = pollers(1, 1, 8);
        let now = Instant::now();
        // Full, but no free slot: more receives could not start more work.
        assert_eq!(
            p.after_receive(receive(10, 10, 20 * MS, false), now),
            Next::Continue
        );
        // Only 3 slots were free, so only 3 were asked for: not a full batch.
        assert_eq!(
            p.after_receive(receive(3, 3, 20 * MS, true), now),
            Next::Continue
        );
        assert_eq!(p.active(), 1);
        // A free slot: the first full receive may add one.
        assert_eq!(
            p.after_receive(receive(10, 10, 20 * MS, true), now),
            Next::Grow
        );
    }

    #[test]
    fn a_pinned_count_never_changes() {
        let p = pollers(4, 4, 4);
        let now = Instant::now();
        assert_eq!(
            p.after_receive(receive(10, 10, 20 * MS, true), now),
            Next::Continue
        );
        assert_eq!(
            p.after_receive(receive(10, 0, 20 * MS, true), now),
            Next::Continue
        );
        assert_eq!(run(&p, MS / 10, 8_000.0, Duration::from_secs(1)), 4);
        assert_eq!(p.active(), 4);
    }

    #[test]
    fn a_burst_then_idle_grows_then_shrinks_back_to_one() {
        let p = pollers(1, 1, 16);
        run(&p, 20 * MS, 20_000.0, Duration::from_secs(2));
        assert_eq!(p.active(), 16);
        // Drained: every receive is empty (a long poll that waited); all but one stop.
        let now = Instant::now() + Duration::from_secs(3);
        for _ in 0..16 {
            p.after_receive(receive(10, 0, Duration::from_secs(20), true), now);
        }
        assert_eq!(p.active(), 1);
    }

    #[test]
    fn bounds_are_sane_whatever_is_asked() {
        let p = pollers(0, 0, 0);
        assert_eq!((p.active(), p.min, p.max), (1, 1, 1));
        p.stopped();
        assert_eq!(p.active(), 0);
        p.stopped();
        assert_eq!(p.active(), 0, "never below zero");
    }
}
