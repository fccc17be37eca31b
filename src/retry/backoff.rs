//! Full-jitter exponential backoff, for a 429 (or retryable failure) that did not say how long to
//! wait.
//!
//! "Full jitter" (sleep a uniform time in `[0, min(max, base · 2^attempt)]`) spreads the retries of
//! many throttled requests over the whole window. With JMeter driving hundreds of threads into the
//! same limit, a deterministic or lightly jittered backoff would bring them back in a herd and
//! earn the next 429 together.

use std::time::Duration;

use rand::Rng;

/// A uniformly random wait in `[0, min(max, base · 2^attempt)]`, both ends included.
///
/// `attempt` counts retries from 0 (the wait before the first retry has a ceiling of `base`).
/// Never overflows or panics: once `base · 2^attempt` leaves the range of `Duration`, the ceiling
/// is simply `max`.
pub fn full_jitter(attempt: u32, base: Duration, max: Duration, rng: &mut impl Rng) -> Duration {
    uniform_up_to(ceiling(attempt, base, max), rng)
}

/// `min(max, base · 2^attempt)`, saturating at `max`.
pub fn ceiling(attempt: u32, base: Duration, max: Duration) -> Duration {
    2u32.checked_pow(attempt)
        .and_then(|factor| base.checked_mul(factor))
        .map_or(max, |grown| grown.min(max))
}

/// Uniform in `[0, upper]` at nanosecond resolution.
fn uniform_up_to(upper: Duration, rng: &mut impl Rng) -> Duration {
    // u128 nanoseconds: every Duration fits, and so does the result, since it is <= upper.
    let nanos = rng.random_range(0..=upper.as_nanos());
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    Duration::new(
        (nanos / NANOS_PER_SEC) as u64,
        (nanos % NANOS_PER_SEC) as u32,
    )
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn ceiling_grows_then_saturates() {
        let base = 100 * MS;
        let max = Duration::from_secs(10);
        assert_eq!(ceiling(0, base, max), base);
        assert_eq!(ceiling(1, base, max), 200 * MS);
        assert_eq!(ceiling(6, base, max), 6400 * MS);
        assert_eq!(ceiling(7, base, max), max);
        for attempt in [31, 32, 33, 64, 1000, u32::MAX] {
            assert_eq!(ceiling(attempt, base, max), max, "attempt {attempt}");
        }
        assert_eq!(
            ceiling(u32::MAX, Duration::MAX, Duration::MAX),
            Duration::MAX
        );
        assert_eq!(ceiling(5, Duration::ZERO, max), Duration::ZERO);
        assert_eq!(ceiling(5, base, Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn stays_within_bounds_for_any_attempt() {
        let mut rng = StdRng::seed_from_u64(7);
        let base = 250 * MS;
        let max = Duration::from_secs(30);
        for attempt in (0..70).chain([u32::MAX - 1, u32::MAX]) {
            let upper = ceiling(attempt, base, max);
            for _ in 0..200 {
                let wait = full_jitter(attempt, base, max, &mut rng);
                assert!(wait <= upper, "attempt {attempt}: {wait:?} > {upper:?}");
            }
        }
        let huge = full_jitter(u32::MAX, Duration::MAX, Duration::MAX, &mut rng);
        assert!(huge <= Duration::MAX);
        assert_eq!(
            full_jitter(3, base, Duration::ZERO, &mut rng),
            Duration::ZERO
        );
    }

    /// The mean of a uniform on `[0, c]` is `c/2`, and every tenth of the range gets about a tenth
    /// of the draws. Loose bounds: this catches a wrong range or a skew, not rand's quality.
    #[test]
    fn distribution_is_roughly_uniform() {
        let mut rng = StdRng::seed_from_u64(42);
        let (base, max) = (Duration::from_secs(1), Duration::from_secs(8));
        let upper = ceiling(3, base, max).as_secs_f64();
        let draws = 20_000;
        let mut buckets = [0u32; 10];
        let mut sum = 0.0;
        for _ in 0..draws {
            let x = full_jitter(3, base, max, &mut rng).as_secs_f64() / upper;
            sum += x;
            buckets[((x * 10.0) as usize).min(9)] += 1;
        }
        let mean = sum / draws as f64;
        assert!((mean - 0.5).abs() < 0.02, "mean {mean}");
        for (i, &n) in buckets.iter().enumerate() {
            let share = n as f64 / draws as f64;
            assert!((share - 0.1).abs() < 0.015, "bucket {i}: {share}");
        }
    }

    #[test]
    fn same_seed_same_waits() {
        let draw = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..5)
                .map(|a| full_jitter(a, 100 * MS, Duration::from_secs(5), &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
    }
}
