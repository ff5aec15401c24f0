//! The two estimates the batcher steers by, kept apart from its tasks so they can be reasoned
//! about (and tested) as plain arithmetic: how long a partial batch may wait ([`Linger`]) and
//! how many calls may be in flight ([`Concurrency`]).

use std::time::Duration;

use tokio::time::Instant;

/// Weight of the newest inter-arrival gap in the moving average.
const GAP_WEIGHT: f64 = 0.25;

/// The arrival rate, as an exponentially weighted moving average of the gaps between items.
///
/// A gap is counted at most as `2 × max` (a pause of a minute says no more than "arrivals
/// stopped", and must not take a minute of arrivals to forget), and the average starts at
/// `max / 2`: the first batch waits up to `max`, as a fixed linger would.
#[derive(Debug, Clone)]
pub struct Linger {
    max: Duration,
    /// Average gap between arrivals, in seconds.
    gap: f64,
    last: Option<Instant>,
}

impl Linger {
    pub fn new(max: Duration) -> Self {
        Linger {
            max,
            gap: max.as_secs_f64() / 2.0,
            last: None,
        }
    }

    /// Counts an arrival at `now`.
    pub fn arrived(&mut self, now: Instant) {
        if let Some(last) = self.last {
            let sample = now
                .saturating_duration_since(last)
                .as_secs_f64()
                .min(2.0 * self.max.as_secs_f64());
            self.gap += GAP_WEIGHT * (sample - self.gap);
        }
        self.last = Some(now);
    }

    /// Until when a batch that started at `first` and lacks `missing` entries may wait, seen
    /// at `now` (just after an arrival): the time the missing entries take at the current
    /// rate, never past `first + max`. When not even the next entry is expected within `max`,
    /// arrivals have stopped and the batch goes at once.
    pub fn deadline(&self, first: Instant, now: Instant, missing: usize) -> Instant {
        let max = self.max.as_secs_f64();
        if self.gap > max {
            return now;
        }
        let fill = Duration::from_secs_f64((self.gap * missing as f64).min(max));
        (now + fill).min(first + self.max)
    }

    /// The average gap between arrivals.
    pub fn gap(&self) -> Duration {
        Duration::from_secs_f64(self.gap)
    }
}

/// What a flush tells the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    /// The call was answered (whatever it said about single entries).
    Done,
    /// The service asked to slow down (throttling, 429/503).
    Throttled,
    /// The call failed on the way or on the service's side (network, timeout, 5xx).
    Failed,
}

/// The limit on calls in flight: additive increase, multiplicative decrease (AIMD).
///
/// - It grows by `1 / limit` per call answered while the batcher was *starved* — a ready
///   batch had to wait because the limit was reached — so by about one per round trip of
///   calls, as long as demand exceeds what the calls in flight carry.
/// - It halves on a throttled or failed call, at most once per round: a call that started
///   before the last decrease does not decrease it again (its answer says nothing about the
///   new limit).
/// - It stays between `1` and `ceiling`, and does not decay while idle: calls only start when a
///   batch is ready, so a high limit under low demand costs nothing.
#[derive(Debug, Clone)]
pub struct Concurrency {
    limit: f64,
    ceiling: usize,
    /// Counts the decreases; a call remembers the round it started in.
    round: u64,
    starved: bool,
}

impl Concurrency {
    pub fn new(initial: usize, ceiling: usize) -> Self {
        let ceiling = ceiling.max(1);
        Concurrency {
            limit: initial.clamp(1, ceiling) as f64,
            ceiling,
            round: 0,
            starved: false,
        }
    }

    /// Calls allowed in flight now.
    pub fn limit(&self) -> usize {
        self.limit as usize
    }

    pub fn ceiling(&self) -> usize {
        self.ceiling
    }

    /// The round a call starting now belongs to.
    pub fn round(&self) -> u64 {
        self.round
    }

    /// A ready batch is waiting for a call slot.
    pub fn starved(&mut self) {
        self.starved = true;
    }

    /// Learns from a call that started in `round`.
    pub fn answered(&mut self, flushed: Flushed, round: u64) {
        match flushed {
            Flushed::Done => {
                if std::mem::take(&mut self.starved) {
                    self.limit = (self.limit + 1.0 / self.limit).min(self.ceiling as f64);
                }
            }
            Flushed::Throttled | Flushed::Failed => {
                if round >= self.round {
                    self.limit = (self.limit / 2.0).max(1.0);
                    self.round += 1;
                }
                self.starved = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_steady_rate_waits_for_the_missing_entries_only() {
        let mut linger = Linger::new(20 * MS);
        let start = Instant::now();
        for i in 0..50 {
            linger.arrived(start + i * MS / 2); // 2,000 per second
        }
        let now = start + 25 * MS;
        assert!((linger.gap().as_secs_f64() - 0.0005).abs() < 0.0001);
        // Nine missing at 0.5 ms each: 4.5 ms, well under the 20 ms cap.
        let wait = linger.deadline(now, now, 9) - now;
        assert!(wait > 4 * MS && wait < 5 * MS, "{wait:?}");
        // Never past the cap counted from the batch's first entry.
        assert_eq!(linger.deadline(now - 19 * MS, now, 9), now + MS);
    }

    #[test]
    fn sparse_arrivals_go_at_once_and_a_pause_is_forgotten_quickly() {
        let mut linger = Linger::new(2 * MS);
        let mut now = Instant::now();
        for _ in 0..5 {
            now += Duration::from_secs(60);
            linger.arrived(now);
        }
        assert_eq!(linger.deadline(now, now, 9), now, "arrivals stopped");
        assert!(linger.gap() <= 4 * MS, "a pause counts as twice the cap");
        for _ in 0..8 {
            now += MS / 10;
            linger.arrived(now);
        }
        assert!(linger.deadline(now, now, 9) > now, "busy again");
    }

    #[test]
    fn the_limit_grows_by_one_per_round_trip_while_starved() {
        let mut concurrency = Concurrency::new(4, 64);
        for _ in 0..4 {
            concurrency.starved();
            concurrency.answered(Flushed::Done, 0);
        }
        assert_eq!(concurrency.limit(), 4, "{}", concurrency.limit);
        concurrency.starved();
        concurrency.answered(Flushed::Done, 0);
        assert_eq!(concurrency.limit(), 5);
        // Not starved: no growth.
        for _ in 0..100 {
            concurrency.answered(Flushed::Done, 0);
        }
        assert_eq!(concurrency.limit(), 5);
    }

    #[test]
    fn throttling_halves_the_limit_once_per_round_down_to_one() {
        let mut concurrency = Concurrency::new(40, 64);
        let round = concurrency.round();
        concurrency.answered(Flushed::Throttled, round);
        assert_eq!(concurrency.limit(), 20);
        // Calls of the same round answering throttled too: no further decrease.
        concurrency.answered(Flushed::Throttled, round);
        concurrency.answered(Flushed::Failed, round);
        assert_eq!(concurrency.limit(), 20);
        for _ in 0..10 {
            let round = concurrency.round();
            concurrency.answered(Flushed::Failed, round);
        }
        assert_eq!(concurrency.limit(), 1);
    }

    #[test]
    fn the_limit_stays_within_one_and_the_ceiling() {
        let mut concurrency = Concurrency::new(100, 8);
        assert_eq!(concurrency.limit(), 8);
        for _ in 0..1000 {
            concurrency.starved();
            concurrency.answered(Flushed::Done, 0);
        }
        assert_eq!(concurrency.limit(), 8);
        assert_eq!(Concurrency::new(0, 0).limit(), 1);
    }
}
