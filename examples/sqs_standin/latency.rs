//! A network's round trip, simulated: `--latency` and `--jitter` delay every SQS and STS answer
//! (not the control endpoints), so that a benchmark sees what real SQS costs in time (~5–30 ms
//! in-region, 60–100 ms cross-region) rather than the stand-in's microseconds.
//!
//! Each answer waits `latency + U[0, jitter)`: the latency is a floor (no answer comes sooner),
//! and the jitter only adds, so the mean delay is `latency + jitter / 2`. The wait comes after
//! the operation ran, before the answer is written: a message sent is visible at once (as when
//! the SQS front end has stored it and the answer is on its way), and a long poll returns as soon
//! as a message is visible, plus the delay. Every request sleeps on its own timer, in its own
//! connection's task: delays overlap, nothing is serialized (the client's connections are the
//! only limit, as with real SQS).

use std::time::Duration;

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
            tokio::time::sleep(delay).await;
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
}
