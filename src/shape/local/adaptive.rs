//! AIMD: cut the effective rate once per congestion event, give it back step by step.
//!
//! The state is the fraction of the base rate in force right after the last cut and the instant of
//! that cut; the fraction at any later instant follows from the clean intervals since, so nothing
//! has to tick in the background and readers on the hot path only load two atomics.
//!
//! One burst that overran the API draws several 429s at once (five requests in flight, five
//! 429s); cutting for each would compound a single overrun into a rate far below the API's. So
//! 429s that arrive while the last cut's event lasts (the pause it brought, and at least one
//! `interval`) cut nothing more. Cuts take a small lock so that two concurrent 429s decide one
//! after the other.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::bucket::Nanos;
use crate::config::Adaptive;

const NEVER: u64 = u64::MAX;

#[derive(Debug)]
pub(super) struct Aimd {
    cfg: Adaptive,
    /// f64 bits of the fraction right after the last cut.
    cut_to: AtomicU64,
    /// Reading of the last cut, NEVER before the first.
    cut_at: AtomicU64,
    /// Reading until which 429s belong to the last cut's event.
    event_end: AtomicU64,
    cuts: AtomicU64,
    cutting: Mutex<()>,
}

/// The fraction of the base rate in force, and the reading at which it next grows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Share {
    pub(super) fraction: f64,
    pub(super) next_step: Option<Nanos>,
}

// === impl Aimd ===

impl Aimd {
    pub(super) fn new(cfg: Adaptive) -> Aimd {
        Aimd {
            cfg,
            cut_to: AtomicU64::new(1f64.to_bits()),
            cut_at: AtomicU64::new(NEVER),
            event_end: AtomicU64::new(0),
            cuts: AtomicU64::new(0),
            cutting: Mutex::new(()),
        }
    }

    /// The share of the base rate in force at `now`.
    pub(super) fn share(&self, now: Nanos) -> Share {
        let cut_at = self.cut_at.load(Ordering::Acquire);
        if cut_at == NEVER {
            return Share::FULL;
        }
        let cut_to = f64::from_bits(self.cut_to.load(Ordering::Acquire));
        let interval = (self.cfg.interval.as_nanos() as u64).max(1);
        let steps = now.as_u64().saturating_sub(cut_at) / interval;
        let fraction = cut_to + steps as f64 * self.cfg.step;
        if fraction >= 1.0 {
            return Share::FULL;
        }
        Share {
            fraction,
            next_step: (self.cfg.step > 0.0).then(|| Nanos::from(cut_at + (steps + 1) * interval)),
        }
    }

    /// An upstream 429 at `now` that pauses until `until`: unless the last cut's event is still
    /// on, multiply the current share by the factor, not below the floor.
    pub(super) fn cut(&self, now: Nanos, until: Nanos) {
        let _one_at_a_time = self.cutting.lock();
        let cut_at = self.cut_at.load(Ordering::Acquire);
        if cut_at != NEVER && now.as_u64() < self.event_end.load(Ordering::Relaxed) {
            return;
        }
        let interval = self.cfg.interval.as_nanos().min(u128::from(u64::MAX)) as u64;
        let end = until.as_u64().max(now.as_u64().saturating_add(interval));
        self.event_end.store(end, Ordering::Relaxed);
        self.cuts.fetch_add(1, Ordering::Relaxed);
        let current = self.share(now).fraction;
        let floor = self.cfg.floor.clamp(0.0, 1.0);
        let next = (current * self.cfg.factor).clamp(floor, 1.0);
        // Publish the fraction before the instant: a reader that sees the new instant (Acquire)
        // also sees the new fraction.
        self.cut_to.store(next.to_bits(), Ordering::Release);
        self.cut_at.store(now.as_u64(), Ordering::Release);
    }

    pub(super) fn cuts(&self) -> u64 {
        self.cuts.load(Ordering::Relaxed)
    }
}

// === impl Share ===

impl Share {
    pub(super) const FULL: Share = Share {
        fraction: 1.0,
        next_step: None,
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn aimd() -> Aimd {
        Aimd::new(Adaptive {
            factor: 0.5,
            floor: 0.2,
            step: 0.1,
            interval: Duration::from_secs(5),
        })
    }

    fn s(secs: u64) -> Nanos {
        Nanos::from(secs * 1_000_000_000)
    }

    #[test]
    fn cuts_compound_down_to_the_floor() {
        let a = aimd();
        assert_eq!(a.share(s(0)), Share::FULL);
        a.cut(s(1), s(1));
        assert_eq!(a.share(s(1)).fraction, 0.5);
        // A clean interval gave back a step (0.6) before the next event cut it.
        a.cut(s(6), s(6));
        assert!((a.share(s(6)).fraction - 0.3).abs() < 1e-9);
        a.cut(s(11), s(11));
        assert_eq!(a.share(s(11)).fraction, 0.2);
        assert_eq!(a.cuts(), 3);
    }

    #[test]
    fn one_congestion_event_cuts_once() {
        let a = aimd();
        // Five 429s of one burst, each pausing for 2 s: one cut.
        for _ in 0..5 {
            a.cut(s(1), s(3));
        }
        assert_eq!((a.share(s(1)).fraction, a.cuts()), (0.5, 1));
        // Still within the interval after the cut (5 s), though the pause is over.
        a.cut(s(5), s(6));
        assert_eq!(a.cuts(), 1);
        // A long pause stretches the event past the interval.
        let b = aimd();
        b.cut(s(1), s(20));
        b.cut(s(15), s(16));
        assert_eq!(b.cuts(), 1);
        b.cut(s(20), s(21));
        assert_eq!(b.cuts(), 2);
    }

    #[test]
    fn each_clean_interval_adds_a_step_up_to_full() {
        let a = aimd();
        a.cut(s(10), s(10));
        assert_eq!(a.share(s(14)).next_step, Some(s(15)));
        assert_eq!(a.share(s(14)).fraction, 0.5);
        assert!((a.share(s(15)).fraction - 0.6).abs() < 1e-9);
        assert!((a.share(s(34)).fraction - 0.9).abs() < 1e-9);
        assert_eq!(a.share(s(35)), Share::FULL);
        // A cut during recovery starts from the recovered share.
        a.cut(s(21), s(21));
        assert!((a.share(s(21)).fraction - 0.35).abs() < 1e-9);
    }
}
