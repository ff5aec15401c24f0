//! The two estimates the batcher steers by, kept apart from its tasks so they can be reasoned
//! about (and tested) as plain arithmetic: how long a partial batch may wait ([`Linger`]) and
//! how many calls may be in flight ([`Concurrency`]).

use std::time::Duration;

use tokio::time::Instant;

/// A partial batch waits up to this many times the time a whole batch takes to fill at the
/// current rate: arrivals come in bursts (a receive's ten messages finish together), and a
/// batch that waits only for the average would leave on every pause between two bursts.
const FILL_SLACK: f64 = 2.0;

/// The arrival rate, as a count that decays with a time constant of `max` (so bursts shorter
/// than the linger cap average out, and a pause of twice the cap is mostly forgotten).
///
/// The rate starts at two whole batches per `max`: the first batch waits up to `max`, as a
/// fixed linger would.
#[derive(Debug, Clone)]
pub struct Linger {
    max: Duration,
    /// Arrivals per second, counting the last one.
    rate: f64,
    /// The rate just before the last arrival: what that arrival found.
    before: f64,
    last: Option<Instant>,
}

impl Linger {
    pub fn new(max: Duration) -> Self {
        let rate = FILL_SLACK * MAX_FILL / max.as_secs_f64().max(1e-6);
        Linger {
            max,
            rate,
            before: rate,
            last: None,
        }
    }

    /// Counts an arrival at `now`.
    pub fn arrived(&mut self, now: Instant) {
        let tau = self.max.as_secs_f64().max(1e-6);
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            self.before = self.rate * (-elapsed / tau).exp();
            self.rate = self.before + 1.0 / tau;
        }
        self.last = Some(now);
    }

    /// Until when a batch whose first entry arrived at `first` may wait, seen at `now` (just
    /// after an arrival): [`FILL_SLACK`] times the time a whole batch takes at the current
    /// rate, counted from `first`, never past `first + max`. When the rate found by the last
    /// arrival did not bring even one entry per `max`, arrivals have stopped and the batch goes
    /// at once.
    pub fn deadline(&self, first: Instant, now: Instant) -> Instant {
        let max = self.max.as_secs_f64();
        if self.before * max < 1.0 {
            return now;
        }
        let fill = (FILL_SLACK * MAX_FILL / self.rate).min(max);
        (first + Duration::from_secs_f64(fill)).max(now)
    }

    /// The average gap between arrivals.
    pub fn gap(&self) -> Duration {
        Duration::try_from_secs_f64(1.0 / self.rate).unwrap_or(Duration::MAX)
    }
}

/// Entries in a whole batch, as a float for the arithmetic above.
const MAX_FILL: f64 = super::MAX_ENTRIES as f64;

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
    fn a_steady_rate_waits_twice_the_time_a_batch_takes_to_fill() {
        let mut linger = Linger::new(20 * MS);
        let start = Instant::now();
        for i in 0..400 {
            linger.arrived(start + i * MS / 2); // 2,000 per second, for 200 ms
        }
        let now = start + 200 * MS;
        let gap = linger.gap().as_secs_f64();
        assert!((gap - 0.0005).abs() < 0.00005, "{gap}");
        // Ten entries at 0.5 ms each, twice: 10 ms from the first, under the 20 ms cap.
        let wait = linger.deadline(now, now) - now;
        assert!(wait > 9 * MS && wait < 11 * MS, "{wait:?}");
        // Counted from the batch's first entry: a batch that has waited that long goes now.
        assert_eq!(linger.deadline(now - 12 * MS, now), now);

        // 200 per second would take 100 ms, twice: never past the cap after the first entry.
        let mut slow = Linger::new(20 * MS);
        for i in 0..100 {
            slow.arrived(now + i * 5 * MS);
        }
        let later = now + 500 * MS;
        assert_eq!(slow.deadline(later - 19 * MS, later), later + MS);
    }

    #[test]
    fn bursts_at_the_same_mean_rate_wait_as_long() {
        let mut linger = Linger::new(20 * MS);
        let start = Instant::now();
        // 2,000 per second in bursts of ten every 5 ms.
        for burst in 0..40 {
            for i in 0..10 {
                linger.arrived(start + burst * 5 * MS + i * MS / 100);
            }
        }
        let now = start + 195 * MS + MS / 10;
        let wait = linger.deadline(now, now) - now;
        assert!(wait > 8 * MS && wait < 12 * MS, "{wait:?}");
    }

    #[test]
    fn sparse_arrivals_go_at_once_and_a_pause_is_forgotten_quickly() {
        let mut linger = Linger::new(2 * MS);
        let mut now = Instant::now();
        for _ in 0..5 {
            now += Duration::from_secs(60);
            linger.arrived(now);
        }
        assert_eq!(linger.deadline(now, now), now, "arrivals stopped");
        for _ in 0..8 {
            now += MS / 10;
            linger.arrived(now);
        }
        assert!(linger.deadline(now, now) > now, "busy again");
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
