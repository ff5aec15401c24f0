//! How many `ReceiveMessage` long polls run at once: a small additive-increase /
//! decrease-on-idle controller over the number of pollers.
//!
//! At real SQS latency a source's rate is set by its receives in flight (Little's law:
//! events/s = concurrent receives × messages per receive ÷ call latency), so a fixed number of
//! pollers tuned on loopback caps it: two pollers at 20 ms move at most 1,000 messages/s. The
//! controller lets the queue say how many are needed:
//!
//! - a receive that comes back **full** (as many messages as a whole batch, and every one it
//!   asked for) while in-flight capacity is still free means the backlog outruns the pollers:
//!   one more poller starts (each full poller may add one, so the count can double per round
//!   trip while the backlog lasts);
//! - a receive that comes back **empty or partial** means the pollers outrun the queue: that
//!   poller stops, unless it is the last one;
//! - errors change nothing (the poller backs off instead).
//!
//! The count stays between one and `max`; an idle queue thus costs one long poll per wait time
//! (three receives a minute at 20 s) for the one poller left. When capacity is the limit (no
//! free in-flight slot), nothing grows: more receives could not start more work. An explicit
//! `receive.pollers` pins the count (`min == max`).

use std::sync::atomic::{AtomicUsize, Ordering};

use metrics::Gauge;

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

/// The number of pollers, shared by them.
pub struct Pollers {
    active: AtomicUsize,
    min: usize,
    max: usize,
    gauge: Gauge,
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
        }
    }

    /// Pollers to start with.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// The decision after a receive that asked for `asked` messages (a whole batch is `batch`)
    /// and got `got`, with `capacity_free` telling whether an in-flight slot is still free.
    /// `Grow` and `Stop` have already been counted when returned.
    pub fn after_receive(
        &self,
        asked: usize,
        got: usize,
        batch: usize,
        capacity_free: bool,
    ) -> Next {
        if got >= asked && asked >= batch && capacity_free {
            let grown = self
                .active
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    (n < self.max).then_some(n + 1)
                });
            if grown.is_ok() {
                self.gauge.increment(1.0);
                return Next::Grow;
            }
        } else if got < asked {
            let shrunk = self
                .active
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    (n > self.min).then_some(n - 1)
                });
            if shrunk.is_ok() {
                self.gauge.decrement(1.0);
                return Next::Stop;
            }
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

    fn pollers(initial: usize, min: usize, max: usize) -> Pollers {
        Pollers::new(initial, min, max, Gauge::noop())
    }

    #[test]
    fn full_receives_with_free_capacity_grow_one_poller_each_up_to_the_ceiling() {
        let p = pollers(1, 1, 4);
        assert_eq!(p.after_receive(10, 10, 10, true), Next::Grow);
        assert_eq!(p.after_receive(10, 10, 10, true), Next::Grow);
        assert_eq!(p.after_receive(10, 10, 10, true), Next::Grow);
        assert_eq!(p.active(), 4);
        assert_eq!(
            p.after_receive(10, 10, 10, true),
            Next::Continue,
            "at the ceiling"
        );
        assert_eq!(p.active(), 4);
    }

    #[test]
    fn empty_or_partial_receives_stop_pollers_down_to_one() {
        let p = pollers(3, 1, 8);
        assert_eq!(p.after_receive(10, 0, 10, true), Next::Stop);
        assert_eq!(p.after_receive(10, 4, 10, true), Next::Stop);
        assert_eq!(p.active(), 1);
        assert_eq!(
            p.after_receive(10, 0, 10, true),
            Next::Continue,
            "the last one stays"
        );
        assert_eq!(p.active(), 1);
    }

    #[test]
    fn no_growth_when_capacity_is_the_limit() {
        let p = pollers(2, 1, 8);
        // Full, but no free slot: more receives could not start more work.
        assert_eq!(p.after_receive(10, 10, 10, false), Next::Continue);
        // Only 3 slots were free, so only 3 were asked for: not a full batch.
        assert_eq!(p.after_receive(3, 3, 10, true), Next::Continue);
        assert_eq!(p.active(), 2);
    }

    #[test]
    fn a_pinned_count_never_changes() {
        let p = pollers(4, 4, 4);
        assert_eq!(p.after_receive(10, 10, 10, true), Next::Continue);
        assert_eq!(p.after_receive(10, 0, 10, true), Next::Continue);
        assert_eq!(p.active(), 4);
    }

    #[test]
    fn a_burst_then_idle_grows_then_shrinks_back() {
        let p = pollers(1, 1, 16);
        // A backlog: every poller's receive is full, each adds one: 1, 2, 4, 8, 16.
        for _round in 0..4 {
            for _ in 0..p.active() {
                p.after_receive(10, 10, 10, true);
            }
        }
        assert_eq!(p.active(), 16);
        // Drained: every receive is empty; all but one stop.
        for _ in 0..p.active() {
            p.after_receive(10, 0, 10, true);
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
