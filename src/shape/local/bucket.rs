//! The token bucket of one key: GCRA on tokio time, arithmetic in `shape/gcra.rs`.
//!
//! The state is one theoretical arrival time ("TAT"), a reading of tokio time in nanoseconds since
//! the limit's [`Epoch`]. Every decision takes the reading it is made *at* from the caller rather
//! than reading a clock: that lets the queue account a token at the instant it became available
//! even when the timer that woke the waiter fired a fraction of a millisecond later (see
//! `gate.rs`). All decisions on one bucket are made under its key's lock.
//!
//! Why pacer owns this arithmetic rather than using governor (which it did until the decision in
//! docs/design.md): governor keeps the TAT private and reads its own clock, so pacer needed three
//! workarounds to use it: a clock that was an atomic the caller set before each decision, reading
//! the TAT back by asking for a whole bucket at the epoch and reading the refusal, and rebuilding
//! the limiter to change its rate or set its TAT (a fresh one, then a take at a chosen reading).
//! With `default-features = false` none of those go away. The arithmetic itself is three lines
//! (`shape/gcra.rs`), which the shared limits' Redis script needs in any case, so the local
//! bucket and the Rust copy of the script now share them, and [`Nanos`] is pacer's own.

use std::ops::{Add, Mul};
use std::time::Duration;

use tokio::time::Instant;

use crate::shape::gcra;

/// A span or a reading of time in nanoseconds; readings count from a limit's [`Epoch`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct Nanos(u64);

/// The zero point of a limit's time readings.
#[derive(Debug, Clone, Copy)]
pub(super) struct Epoch(Instant);

/// One key's bucket: emits one token per `interval`, holds at most `burst`.
pub(super) struct Bucket {
    /// Zero for a full bucket, as a fresh one is.
    tat: Nanos,
    interval: Nanos,
    burst: u32,
}

// === impl Nanos ===

impl Nanos {
    pub(super) const fn as_u64(self) -> u64 {
        self.0
    }

    pub(super) fn saturating_sub(self, other: Nanos) -> Nanos {
        Nanos(self.0.saturating_sub(other.0))
    }
}

impl From<u64> for Nanos {
    fn from(n: u64) -> Nanos {
        Nanos(n)
    }
}

impl From<Duration> for Nanos {
    fn from(d: Duration) -> Nanos {
        Nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }
}

impl From<Nanos> for Duration {
    fn from(n: Nanos) -> Duration {
        Duration::from_nanos(n.0)
    }
}

impl Add for Nanos {
    type Output = Nanos;

    fn add(self, other: Nanos) -> Nanos {
        Nanos(self.0.saturating_add(other.0))
    }
}

impl Mul<u64> for Nanos {
    type Output = Nanos;

    fn mul(self, n: u64) -> Nanos {
        Nanos(self.0.saturating_mul(n))
    }
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

// === impl Bucket ===

impl Bucket {
    /// A full bucket. `interval` is at least 1 ns; `burst` at least 1 and small enough that the
    /// bucket spans less than a century (readings are a u64 of nanoseconds).
    pub(super) fn new(interval: Nanos, burst: u32) -> Bucket {
        let interval = Nanos(interval.0.max(1));
        Bucket {
            tat: Nanos(0),
            interval,
            burst: burst.clamp(1, max_burst(interval)),
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
        self.interval == Nanos(interval.0.max(1))
            && self.burst == burst.clamp(1, max_burst(self.interval))
    }

    fn tau(&self) -> u64 {
        gcra::tolerance(self.interval.0, u64::from(self.burst))
    }

    /// Takes one token at `at`, or tells the reading at which one will be available.
    pub(super) fn take(&mut self, at: Nanos) -> Result<(), Nanos> {
        let from = gcra::conforms_from(self.tat.0, self.tau());
        if at.0 < from {
            return Err(Nanos(from));
        }
        self.tat = Nanos(gcra::after(self.tat.0, at.0, self.interval.0));
        Ok(())
    }

    /// The reading at which the next token is available (zero or in the past when it is now).
    pub(super) fn ready_at(&self) -> Nanos {
        Nanos(gcra::conforms_from(self.tat.0, self.tau()))
    }

    /// The theoretical arrival time: the reading at which the bucket is full again.
    pub(super) fn tat(&self) -> Nanos {
        self.tat
    }

    /// Adopts a new rate and burst, keeping how full the bucket is: the share of tokens in use
    /// carries over (capped at the new burst), so a change neither hands out a fresh burst nor
    /// forgets the recent past.
    pub(super) fn reshape(&mut self, interval: Nanos, burst: u32, now: Nanos) {
        let debt = self.tat.saturating_sub(now).0 as f64;
        let in_use = debt / self.interval.0 as f64;
        let mut next = Bucket::new(interval, burst);
        let new_debt = in_use.min(f64::from(next.burst)) * next.interval.0 as f64;
        if new_debt >= 1.0 {
            next.tat = now + Nanos(new_debt as u64);
        }
        *self = next;
    }

    /// Makes the bucket gain no credit before `end`: at `end` one token is available (the
    /// probe after a pause) and the next one an interval later. A bucket already emptier stays.
    pub(super) fn hold_until(&mut self, end: Nanos) {
        let target = end + Nanos(self.tau());
        if self.tat < target {
            self.tat = target;
        }
    }
}

/// The largest burst whose span (burst x interval) fits comfortably in a u64 of nanoseconds.
fn max_burst(interval: Nanos) -> u32 {
    const CENTURY: u64 = 100 * 365 * 24 * 3600 * 1_000_000_000;
    (CENTURY / interval.0.max(1)).clamp(1, u64::from(u32::MAX)) as u32
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
