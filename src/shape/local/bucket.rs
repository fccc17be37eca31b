//! The token bucket of one key: GCRA via governor, on tokio time.
//!
//! governor does the arithmetic and keeps the state (one theoretical arrival time, "TAT", in an
//! atomic). Time reaches it through [`DecisionClock`]: a reading of tokio time as nanoseconds since
//! the limit's [`Epoch`]. The clock reports the instant the bucket is being *asked about*, which
//! the caller sets for each decision, rather than reading the wall clock itself. That is what lets
//! the queue account a token at the instant it became available even when the timer that woke the
//! waiter fired a fraction of a millisecond later (see `gate.rs`), and lets [`Bucket::tat`] read
//! the state without changing it. All decisions on one bucket are made under its key's lock, so
//! setting the reading and then asking is never interleaved.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::time::Instant;

/// The zero point of a limit's time readings.
#[derive(Debug, Clone, Copy)]
pub(super) struct Epoch(Instant);

/// governor's clock for one bucket: the tokio instant of the decision being made.
#[derive(Debug, Default)]
pub(super) struct DecisionClock(AtomicU64);

type Gcra = RateLimiter<NotKeyed, InMemoryState, DecisionClock, NoOpMiddleware<Nanos>>;

/// One key's bucket: emits one token per `interval`, holds at most `burst`.
pub(super) struct Bucket {
    gcra: Gcra,
    interval: Nanos,
    burst: u32,
    /// governor keeps "never used" as a TAT of zero; until the first take the bucket is full.
    used: bool,
}

// === impl Epoch ===

impl Epoch {
    pub(super) fn new(start: Instant) -> Epoch {
        Epoch(start)
    }

    pub(super) fn reading(&self, at: Instant) -> Nanos {
        // Saturating: an instant from before the epoch reads as the epoch itself.
        Nanos::from(at.saturating_duration_since(self.0))
    }

    pub(super) fn instant(&self, reading: Nanos) -> Instant {
        self.0 + Duration::from(reading)
    }
}

// === impl DecisionClock ===

impl DecisionClock {
    fn set(&self, at: Nanos) {
        self.0.store(at.as_u64(), Ordering::Relaxed);
    }
}

impl Clock for DecisionClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.0.load(Ordering::Relaxed))
    }
}

// === impl Bucket ===

impl Bucket {
    /// A full bucket. `interval` is at least 1 ns; `burst` at least 1 and small enough that the
    /// bucket spans less than a century (governor keeps it in a u64 of nanoseconds).
    pub(super) fn new(interval: Nanos, burst: u32) -> Bucket {
        let interval = Nanos::from(interval.as_u64().max(1));
        let burst = burst.clamp(1, max_burst(interval));
        let quota = Quota::with_period(Duration::from(interval))
            .expect("interval is positive")
            .allow_burst(NonZeroU32::new(burst).expect("burst is positive"));
        // Every bucket of a limit shares the epoch as governor's start, so TATs are readings.
        let clock = DecisionClock::default();
        Bucket {
            gcra: RateLimiter::direct_with_clock(quota, clock),
            interval,
            burst,
            used: false,
        }
    }

    #[cfg(test)]
    fn interval(&self) -> Nanos {
        self.interval
    }

    #[cfg(test)]
    fn burst(&self) -> u32 {
        self.burst
    }

    /// Whether this bucket already has these parameters.
    pub(super) fn matches(&self, interval: Nanos, burst: u32) -> bool {
        self.interval == Nanos::from(interval.as_u64().max(1))
            && self.burst == burst.clamp(1, max_burst(self.interval))
    }

    /// Takes one token at `at`, or tells the reading at which one will be available.
    pub(super) fn take(&mut self, at: Nanos) -> Result<(), Nanos> {
        self.gcra.clock().set(at);
        match self.gcra.check() {
            Ok(()) => {
                self.used = true;
                Ok(())
            }
            Err(not_until) => Err(not_until.earliest_possible()),
        }
    }

    /// The reading at which the next token is available (zero or in the past when it is now).
    pub(super) fn ready_at(&self) -> Nanos {
        let tau = self.interval * u64::from(self.burst - 1);
        self.tat().saturating_sub(tau)
    }

    /// The theoretical arrival time: the reading at which the bucket is full again.
    pub(super) fn tat(&self) -> Nanos {
        if !self.used {
            return Nanos::from(0);
        }
        // Asking for a whole bucket at reading zero can never conform once a token was taken
        // (TAT > 0), so governor answers with its TAT and leaves the state alone.
        self.gcra.clock().set(Nanos::from(0));
        let whole = NonZeroU32::new(self.burst).expect("burst is positive");
        match self.gcra.check_n(whole) {
            Ok(Err(not_until)) => not_until.earliest_possible(),
            _ => unreachable!("a used bucket never conforms at its epoch"),
        }
    }

    /// Adopts a new rate and burst, keeping how full the bucket is: the share of tokens in use
    /// carries over (capped at the new burst), so a change neither hands out a fresh burst nor
    /// forgets the recent past.
    pub(super) fn reshape(&mut self, interval: Nanos, burst: u32, now: Nanos) {
        let debt = self.tat().saturating_sub(now).as_u64() as f64;
        let in_use = debt / self.interval.as_u64() as f64;
        let mut next = Bucket::new(interval, burst);
        let new_debt = in_use.min(f64::from(next.burst)) * next.interval.as_u64() as f64;
        if new_debt >= 1.0 {
            next.set_tat(Nanos::from(now.as_u64() + new_debt as u64));
        }
        *self = next;
    }

    /// Makes the bucket gain no credit before `end`: at `end` one token is available (the
    /// probe after a pause) and the next one an interval later. A bucket already emptier stays.
    pub(super) fn hold_until(&mut self, end: Nanos) {
        let target = end + self.interval * u64::from(self.burst - 1);
        if self.tat() < target {
            let mut next = Bucket::new(self.interval, self.burst);
            next.set_tat(target);
            *self = next;
        }
    }

    /// Sets a fresh bucket's TAT. Its first take sets TAT = reading + interval, so take at the
    /// reading that leaves it at `target` (or as close as the epoch allows).
    fn set_tat(&mut self, target: Nanos) {
        let at = target.saturating_sub(self.interval);
        self.take(at).expect("a fresh bucket conforms");
    }
}

/// The largest burst whose span (burst x interval) fits comfortably in governor's u64 nanos.
fn max_burst(interval: Nanos) -> u32 {
    const CENTURY: u64 = 100 * 365 * 24 * 3600 * 1_000_000_000;
    (CENTURY / interval.as_u64().max(1)).clamp(1, u64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn n(ms: u64) -> Nanos {
        Nanos::from(ms * MS)
    }

    #[test]
    fn burst_then_one_per_interval() {
        let mut b = Bucket::new(n(100), 3);
        assert_eq!(b.ready_at(), n(0));
        for _ in 0..3 {
            b.take(n(1000)).unwrap();
        }
        assert_eq!(b.take(n(1000)), Err(n(1100)));
        assert_eq!(b.ready_at(), n(1100));
        assert_eq!(b.tat(), n(1300));
        b.take(n(1100)).unwrap();
        assert_eq!(b.take(n(1150)), Err(n(1200)));
    }

    #[test]
    fn reading_tat_does_not_change_the_state() {
        let mut b = Bucket::new(n(10), 2);
        b.take(n(5)).unwrap();
        for _ in 0..3 {
            assert_eq!(b.tat(), n(15));
        }
        b.take(n(5)).unwrap();
        assert_eq!(b.take(n(5)), Err(n(15)));
    }

    #[test]
    fn reshape_keeps_the_share_in_use() {
        // 100 ms per token, burst 4, all four taken at 1 s: TAT 1.4 s, 4 tokens in use.
        let mut b = Bucket::new(n(100), 4);
        for _ in 0..4 {
            b.take(n(1000)).unwrap();
        }
        // Halve the rate with burst 2 at 1.2 s: 2 tokens were in use, 2 stay in use (400 ms).
        b.reshape(n(200), 2, n(1200));
        assert_eq!((b.interval(), b.burst()), (n(200), 2));
        assert_eq!(b.tat(), n(1600));
        assert_eq!(b.take(n(1399)), Err(n(1400)));
    }

    #[test]
    fn reshape_of_a_rested_bucket_is_full() {
        let mut b = Bucket::new(n(100), 1);
        b.take(n(0)).unwrap();
        b.reshape(n(10), 5, n(5000));
        for _ in 0..5 {
            b.take(n(5000)).unwrap();
        }
        assert!(b.take(n(5000)).is_err());
    }

    #[test]
    fn a_held_bucket_gives_one_token_at_the_end_then_one_per_interval() {
        let mut b = Bucket::new(n(100), 10);
        b.take(n(1000)).unwrap();
        b.hold_until(n(2000));
        assert_eq!(b.take(n(1999)), Err(n(2000)));
        b.take(n(2000)).unwrap();
        assert_eq!(b.take(n(2000)), Err(n(2100)));
        // Holding until an earlier end changes nothing.
        b.hold_until(n(1500));
        assert_eq!(b.take(n(2050)), Err(n(2100)));
    }

    #[test]
    fn huge_bursts_are_clamped() {
        let b = Bucket::new(Nanos::from(3600 * 1_000 * MS), u32::MAX);
        assert!(b.burst() < u32::MAX);
        assert!(b.matches(Nanos::from(3600 * 1_000 * MS), u32::MAX));
    }
}
