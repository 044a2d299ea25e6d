//! How the reconciler retries a failed attempt: exponential backoff with full
//! jitter inside a budget, then a slow retry. Pure: the run loop draws the
//! jitter from [`JitterSource`] and hands it to the state machine.

use std::time::Duration;

/// The retry policy. The defaults are PRODUCT.md's: 1 s, doubling, capped at
/// 30 s, full jitter, for 5 minutes of failures; then a slow retry every 5
/// minutes.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// The backoff after the first failure.
    pub initial: Duration,
    /// The longest backoff.
    pub max: Duration,
    /// How long a run of retryable failures may last before the reconciler
    /// is `Failed`.
    pub budget: Duration,
    /// The interval of the slow retry in `Failed`.
    pub slow_retry: Duration,
    /// How the backoff is randomised.
    pub jitter: Jitter,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
            budget: Duration::from_secs(5 * 60),
            slow_retry: Duration::from_secs(5 * 60),
            jitter: Jitter::Full { seed: None },
        }
    }
}

impl RetryPolicy {
    /// The backoff before attempt `attempt + 1`, after `attempt` failures in a
    /// row, before jitter: `initial * 2^(attempt - 1)`, at most `max`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(32);
        self.initial
            .saturating_mul(1u32 << doublings.min(31))
            .min(self.max)
    }
}

/// How a backoff is randomised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Jitter {
    /// Each backoff is drawn uniformly from zero to its full length, so that
    /// many reconcilers that failed together do not retry together. A seed
    /// makes the draws repeatable (for tests); `None` seeds from entropy.
    Full {
        /// The seed.
        seed: Option<u64>,
    },
    /// Every backoff is exactly [`RetryPolicy::backoff`].
    Off,
}

/// Draws the jitter factors of one reconciler.
#[derive(Debug)]
pub struct JitterSource {
    rng: Option<fastrand::Rng>,
}

impl JitterSource {
    /// A source for `jitter`.
    pub fn new(jitter: Jitter) -> Self {
        let rng = match jitter {
            Jitter::Off => None,
            Jitter::Full { seed: Some(seed) } => Some(fastrand::Rng::with_seed(seed)),
            Jitter::Full { seed: None } => Some(fastrand::Rng::new()),
        };
        JitterSource { rng }
    }

    /// The next factor, in `[0, 1]`; always 1 with jitter off.
    pub fn next_factor(&mut self) -> f64 {
        self.rng.as_mut().map_or(1.0, fastrand::Rng::f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_up_to_thirty() {
        let policy = RetryPolicy::default();
        let seconds: Vec<u64> = (1..=8).map(|n| policy.backoff(n).as_secs()).collect();
        assert_eq!(seconds, vec![1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(policy.backoff(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn a_seeded_jitter_repeats_and_stays_in_range() {
        let draw = || {
            let mut source = JitterSource::new(Jitter::Full { seed: Some(7) });
            (0..100).map(|_| source.next_factor()).collect::<Vec<f64>>()
        };
        let (first, second) = (draw(), draw());
        assert_eq!(first, second);
        assert!(first.iter().all(|f| (0.0..=1.0).contains(f)));
        assert!(first.iter().any(|f| *f < 0.5) && first.iter().any(|f| *f > 0.5));
        let mut off = JitterSource::new(Jitter::Off);
        assert_eq!(off.next_factor(), 1.0);
    }
}
