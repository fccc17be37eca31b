//! When each arrival of an open-model phase is meant to start.
//!
//! The k-th start time is computed from k alone, never by adding intervals, so rounding cannot
//! accumulate into drift however long the phase: at 20,000/s for an hour the last arrival is
//! as exact as the first. The scheduler sleeps until the next start time and then sends every
//! arrival that is due, so a coarse or late timer wake-up costs latency (which is measured from
//! the intended start) but never arrivals.

use std::time::Duration;

/// Arrival times of a phase whose rate goes linearly from `rate` to `to` per second over
/// `duration` (a constant rate when they are equal).
#[derive(Debug, Clone, Copy)]
pub struct Arrivals {
    rate: f64,
    /// Change of rate per second of the phase.
    slope: f64,
    count: u64,
}

// === impl Arrivals ===

impl Arrivals {
    pub fn new(rate: f64, to: f64, duration: Duration) -> Arrivals {
        let secs = duration.as_secs_f64();
        let slope = if secs > 0.0 { (to - rate) / secs } else { 0.0 };
        // Arrivals expected by the end: the area under the rate line. Arrival k starts when
        // k have been expected, so those with k below the area fall inside the phase; the
        // tolerance keeps 500/s x 2s at exactly 1000 despite floating-point rounding.
        let expected = (rate + to) / 2.0 * secs;
        let count = (expected - 1e-9).ceil().max(0.0) as u64;
        Arrivals { rate, slope, count }
    }

    /// How many arrivals the phase has.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// When arrival `k` (from 0) starts, from the phase's start.
    ///
    /// It solves `rate*t + slope*t^2/2 = k` for t, in the form `2k / (rate + sqrt(rate^2 +
    /// 2*slope*k))`, which stays exact for a constant rate (slope 0), a ramp from 0 (rate 0)
    /// and a ramp down alike.
    pub fn offset(&self, k: u64) -> Duration {
        if k == 0 {
            return Duration::ZERO;
        }
        let k = k as f64;
        let root = (self.rate * self.rate + 2.0 * self.slope * k)
            .max(0.0)
            .sqrt();
        Duration::from_secs_f64(2.0 * k / (self.rate + root))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(d: Duration) -> f64 {
        d.as_secs_f64()
    }

    #[test]
    fn constant_rate_is_evenly_spaced_and_exact() {
        let a = Arrivals::new(500.0, 500.0, Duration::from_secs(2));
        assert_eq!(a.count(), 1000);
        assert_eq!(a.offset(0), Duration::ZERO);
        assert!((secs(a.offset(1)) - 0.002).abs() < 1e-12);
        assert!((secs(a.offset(999)) - 1.998).abs() < 1e-9);
        let fast = Arrivals::new(20_000.0, 20_000.0, Duration::from_secs(3600));
        assert_eq!(fast.count(), 72_000_000);
        let last = secs(fast.offset(71_999_999));
        assert!((last - (3600.0 - 1.0 / 20_000.0)).abs() < 1e-6, "{last}");
    }

    #[test]
    fn ramps_follow_the_area_under_the_line() {
        // 50/s to 200/s over 30 s: 3750 arrivals, half of the time at the slow end.
        let a = Arrivals::new(50.0, 200.0, Duration::from_secs(30));
        assert_eq!(a.count(), 3750);
        // After 15 s the rate is 125/s: 15 * (50 + 125) / 2 = 1312.5 arrivals so far.
        let t = secs(a.offset(1312));
        assert!((t - 15.0).abs() < 0.01, "{t}");
        assert!(secs(a.offset(3749)) < 30.0);
        // From zero and downwards.
        let up = Arrivals::new(0.0, 100.0, Duration::from_secs(10));
        assert_eq!(up.count(), 500);
        assert!((secs(up.offset(125)) - 5.0).abs() < 0.01);
        let down = Arrivals::new(100.0, 0.0, Duration::from_secs(10));
        assert_eq!(down.count(), 500);
        assert!((secs(down.offset(375)) - 5.0).abs() < 0.01);
        assert!(secs(down.offset(499)) < 10.0);
    }

    #[test]
    fn offsets_only_increase() {
        for (rate, to) in [(10.0, 10.0), (0.0, 50.0), (50.0, 0.0), (3.0, 7.0)] {
            let a = Arrivals::new(rate, to, Duration::from_secs(7));
            let mut last = Duration::ZERO;
            for k in 1..a.count() {
                let t = a.offset(k);
                assert!(t > last, "{rate}->{to} k={k}");
                last = t;
            }
            assert!(last < Duration::from_secs(7));
        }
    }
}
