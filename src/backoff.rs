//! The one backoff every retry loop uses: the wait before retry number `attempt` (1-based),
//! on an exponential (`base × 2^(attempt − 1)`) or linear (`base × attempt`) curve, capped at
//! a ceiling, optionally with "equal jitter" (half of the wait fixed, half random) so replicas
//! retrying the same thing spread out.
//!
//! These are Knative's `spec.delivery.backoffPolicy` curves; the backoff crates offer no linear
//! curve and no equal jitter, hence this small module. It depends on nothing else in the crate.
//!
//! [`until_some`] is the one "try until it works, or until shutdown" loop built on it.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tokio_util::sync::CancellationToken;

/// How the wait grows with the attempt number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    /// `base × 2^(attempt − 1)`: base, 2 × base, 4 × base, …
    Exponential,
    /// `base × attempt`: base, 2 × base, 3 × base, …
    Linear,
}

/// A backoff whose base is above its ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidBackoff {
    pub base: Duration,
    pub ceiling: Duration,
}

impl std::fmt::Display for InvalidBackoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the backoff's base ({:?}) is above its ceiling ({:?})",
            self.base, self.ceiling
        )
    }
}

impl std::error::Error for InvalidBackoff {}

/// A retry policy's waits: a curve from `base`, capped at `ceiling`, with or without jitter.
/// A zero base is allowed and means "retry at once".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    curve: Curve,
    base: Duration,
    ceiling: Duration,
    jitter: bool,
}

impl Backoff {
    /// A backoff without jitter; fails when `base` is above `ceiling`.
    pub const fn new(
        curve: Curve,
        base: Duration,
        ceiling: Duration,
    ) -> Result<Self, InvalidBackoff> {
        if base.as_nanos() > ceiling.as_nanos() {
            return Err(InvalidBackoff { base, ceiling });
        }
        Ok(Backoff {
            curve,
            base,
            ceiling,
            jitter: false,
        })
    }

    /// [`Backoff::new`] for constants (an invalid one fails the build) and values known to be
    /// valid; panics on an invalid one.
    pub const fn fixed(curve: Curve, base: Duration, ceiling: Duration) -> Self {
        match Backoff::new(curve, base, ceiling) {
            Ok(backoff) => backoff,
            Err(_) => panic!("the backoff's base is above its ceiling"),
        }
    }

    /// The same backoff with equal jitter: each wait is drawn from `[nominal / 2, nominal]`.
    pub const fn with_jitter(self) -> Self {
        Backoff {
            jitter: true,
            ..self
        }
    }

    /// The longest wait.
    pub const fn ceiling(&self) -> Duration {
        self.ceiling
    }

    /// The wait before retry number `attempt` without jitter: `base` for attempt 1 (and 0),
    /// growing along the curve, never above the ceiling, never overflowing.
    pub fn nominal(&self, attempt: u32) -> Duration {
        let attempt = attempt.max(1);
        // Checked, in u128 nanoseconds: factors up to 2^127 fit, so even a 1 ns base grows
        // until it meets the ceiling, and nothing wraps.
        let base = self.base.as_nanos();
        let wait = match self.curve {
            Curve::Exponential => 1u128
                .checked_shl(attempt - 1)
                .and_then(|factor| base.checked_mul(factor)),
            Curve::Linear => base.checked_mul(u128::from(attempt)),
        };
        match wait {
            Some(nanos) if nanos < self.ceiling.as_nanos() => from_nanos(nanos),
            // Only a factor beyond 2^127 leaves nothing: zero times it is still zero.
            None if base == 0 => Duration::ZERO,
            _ => self.ceiling,
        }
    }

    /// The wait before retry number `attempt`: the nominal wait, jittered if asked for.
    pub fn delay(&self, attempt: u32) -> Duration {
        self.delay_with(attempt, &mut rand::rng())
    }

    /// [`Backoff::delay`] drawing the jitter from `rng`.
    pub fn delay_with(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let nominal = self.nominal(attempt);
        if !self.jitter {
            return nominal;
        }
        // Equal jitter: half fixed, the other half (the larger one when odd) uniform.
        let fixed = nominal / 2;
        let spread = (nominal - fixed).as_nanos();
        fixed + from_nanos(rng.random_range(0..=spread))
    }
}

/// A duration from nanoseconds known to be at most some `Duration`'s.
fn from_nanos(nanos: u128) -> Duration {
    const PER_SECOND: u128 = 1_000_000_000;
    Duration::new((nanos / PER_SECOND) as u64, (nanos % PER_SECOND) as u32)
}

/// A retry loop's progress through a [`Backoff`]: each failure asks for the next wait.
#[derive(Debug, Clone)]
pub struct Retry {
    backoff: Backoff,
    attempt: u32,
}

impl Retry {
    pub const fn new(backoff: Backoff) -> Self {
        Retry {
            backoff,
            attempt: 0,
        }
    }

    /// Counts one more failure and returns the wait before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        self.attempt = self.attempt.saturating_add(1);
        self.backoff.delay(self.attempt)
    }
}

/// Runs `attempt` until it gives `Some`, waiting `backoff`'s next delay after each `None`;
/// `None` as soon as `shutdown` fires, during an attempt or a wait. An attempt reports its own
/// failure (log, metric) before it gives `None`.
pub async fn until_some<T, F, Fut>(
    backoff: Backoff,
    shutdown: &CancellationToken,
    mut attempt: F,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let mut retry = Retry::new(backoff);
    loop {
        tokio::select! {
            outcome = attempt() => if outcome.is_some() { return outcome },
            () = shutdown.cancelled() => return None,
        }
        tokio::select! {
            () = tokio::time::sleep(retry.next_delay()) => {},
            () = shutdown.cancelled() => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    const MS: Duration = Duration::from_millis(1);

    fn waits(backoff: &Backoff, attempts: std::ops::RangeInclusive<u32>) -> Vec<Duration> {
        attempts.map(|attempt| backoff.delay(attempt)).collect()
    }

    #[test]
    fn exponential_doubles_from_the_base_up_to_the_ceiling() {
        let backoff = Backoff::fixed(Curve::Exponential, 500 * MS, Duration::from_secs(30));
        let expected: Vec<Duration> = [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]
            .into_iter()
            .map(|ms| ms * MS)
            .collect();
        assert_eq!(waits(&backoff, 1..=8), expected);
        assert_eq!(
            backoff.nominal(0),
            500 * MS,
            "attempt 0 counts as the first"
        );
    }

    #[test]
    fn linear_adds_the_base_up_to_the_ceiling() {
        let backoff = Backoff::fixed(Curve::Linear, 200 * MS, Duration::from_secs(1));
        let expected: Vec<Duration> = [200, 400, 600, 800, 1000, 1000]
            .into_iter()
            .map(|ms| ms * MS)
            .collect();
        assert_eq!(waits(&backoff, 1..=6), expected);
        assert_eq!(backoff.nominal(0), 200 * MS);
    }

    #[test]
    fn large_attempts_stay_at_the_ceiling_without_overflow() {
        let ceiling = Duration::from_secs(12 * 3600);
        let huge = [64, 128, 129, 1000, u32::MAX - 1, u32::MAX];
        for base in [Duration::from_nanos(1), Duration::from_secs(1), ceiling] {
            let exponential = Backoff::fixed(Curve::Exponential, base, ceiling);
            for attempt in huge {
                assert_eq!(exponential.nominal(attempt), ceiling, "{base:?} {attempt}");
            }
        }
        // 1 s × 43,200 is the 12-hour ceiling; 1 ns × u32::MAX is only 4.29 s.
        let linear = Backoff::fixed(Curve::Linear, Duration::from_secs(1), ceiling);
        assert_eq!(linear.nominal(43_199), ceiling - Duration::from_secs(1));
        for attempt in [43_200, 43_201, u32::MAX - 1, u32::MAX] {
            assert_eq!(linear.nominal(attempt), ceiling, "{attempt}");
        }
        let linear = Backoff::fixed(Curve::Linear, Duration::from_nanos(1), ceiling);
        assert_eq!(
            linear.nominal(u32::MAX),
            Duration::from_nanos(u64::from(u32::MAX))
        );
        // Exponential grows past 2^32 × base: 1 ns × 2^45 is about 9.8 hours, 2^46 beyond 12.
        let tiny = Backoff::fixed(Curve::Exponential, Duration::from_nanos(1), ceiling);
        assert_eq!(tiny.nominal(46), Duration::from_nanos(1 << 45));
        assert_eq!(tiny.nominal(47), ceiling);
        for curve in [Curve::Exponential, Curve::Linear] {
            let widest = Backoff::fixed(curve, Duration::MAX, Duration::MAX);
            assert_eq!(widest.nominal(u32::MAX), Duration::MAX, "{curve:?}");
            assert!(widest.with_jitter().delay(u32::MAX) >= Duration::MAX / 2);
        }
    }

    #[test]
    fn a_zero_base_never_waits() {
        for curve in [Curve::Exponential, Curve::Linear] {
            let backoff =
                Backoff::fixed(curve, Duration::ZERO, Duration::from_secs(30)).with_jitter();
            for attempt in [1, 2, 40, u32::MAX] {
                assert_eq!(
                    backoff.delay(attempt),
                    Duration::ZERO,
                    "{curve:?} {attempt}"
                );
            }
        }
    }

    #[test]
    fn equal_jitter_stays_between_half_and_all_of_the_nominal_wait() {
        let mut rng = StdRng::seed_from_u64(12);
        for curve in [Curve::Exponential, Curve::Linear] {
            let backoff = Backoff::fixed(curve, 100 * MS, Duration::from_secs(1)).with_jitter();
            for attempt in 1..=12 {
                let nominal = backoff.nominal(attempt);
                let samples: Vec<Duration> = (0..500)
                    .map(|_| backoff.delay_with(attempt, &mut rng))
                    .collect();
                for wait in &samples {
                    assert!(
                        *wait >= nominal / 2 && *wait <= nominal,
                        "{curve:?} {attempt}: {wait:?} outside [{:?}, {nominal:?}]",
                        nominal / 2
                    );
                }
                // Random, not pinned to one end: both halves of the range are hit.
                let middle = nominal * 3 / 4;
                assert!(
                    samples.iter().any(|wait| *wait < middle),
                    "{curve:?} {attempt}"
                );
                assert!(
                    samples.iter().any(|wait| *wait > middle),
                    "{curve:?} {attempt}"
                );
            }
        }
        // Odd nanoseconds: the bounds hold exactly.
        let odd = Backoff::fixed(
            Curve::Linear,
            Duration::from_nanos(3),
            Duration::from_nanos(3),
        )
        .with_jitter();
        for _ in 0..100 {
            let wait = odd.delay_with(1, &mut rng);
            assert!((1..=3).contains(&wait.as_nanos()), "{wait:?}");
        }
        // The thread's generator, through `delay`, keeps the same bounds.
        let backoff = Backoff::fixed(
            Curve::Exponential,
            Duration::from_secs(2),
            Duration::from_secs(30),
        )
        .with_jitter();
        for _ in 0..200 {
            let wait = backoff.delay(1);
            assert!(
                wait >= Duration::from_secs(1) && wait <= Duration::from_secs(2),
                "{wait:?}"
            );
        }
    }

    #[test]
    fn without_jitter_the_wait_is_the_nominal_one() {
        let backoff = Backoff::fixed(Curve::Exponential, 250 * MS, Duration::from_secs(4));
        let mut rng = StdRng::seed_from_u64(1);
        for attempt in 1..=8 {
            assert_eq!(
                backoff.delay_with(attempt, &mut rng),
                backoff.nominal(attempt)
            );
        }
    }

    #[test]
    fn rejects_a_base_above_the_ceiling() {
        let err = Backoff::new(
            Curve::Linear,
            Duration::from_secs(2),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert_eq!(
            err,
            InvalidBackoff {
                base: Duration::from_secs(2),
                ceiling: Duration::from_secs(1)
            }
        );
        assert_eq!(
            err.to_string(),
            "the backoff's base (2s) is above its ceiling (1s)"
        );
        let equal = Backoff::new(
            Curve::Exponential,
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        assert_eq!(equal.map(|b| b.nominal(9)), Ok(Duration::from_secs(1)));
    }

    #[test]
    fn retry_counts_failures() {
        let mut retry = Retry::new(Backoff::fixed(Curve::Exponential, MS, 3 * MS));
        let waits: Vec<Duration> = (0..4).map(|_| retry.next_delay()).collect();
        assert_eq!(waits, vec![MS, 2 * MS, 3 * MS, 3 * MS]);
    }

    #[tokio::test(start_paused = true)]
    async fn until_some_waits_the_backoff_between_attempts_and_stops_at_shutdown() {
        let backoff = Backoff::fixed(Curve::Exponential, 100 * MS, Duration::from_secs(1));
        let started = tokio::time::Instant::now();
        let mut attempts = 0;
        let shutdown = CancellationToken::new();
        let third = until_some(backoff, &shutdown, || {
            attempts += 1;
            let outcome = (attempts == 3).then_some(attempts);
            async move { outcome }
        })
        .await;
        assert_eq!(third, Some(3));
        assert_eq!(started.elapsed(), 300 * MS, "100 ms, then 200 ms");

        let stopping = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(150 * MS).await;
            stopping.cancel();
        });
        let never: Option<()> = until_some(backoff, &shutdown, || async { None }).await;
        assert_eq!(never, None);
        assert_eq!(
            started.elapsed(),
            450 * MS,
            "ended by the shutdown, mid-wait"
        );
    }
}
