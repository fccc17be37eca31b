//! AIMD: cut the effective rate on each upstream 429, give it back step by step.
//!
//! The state is the fraction of the base rate in force right after the last cut and the instant of
//! that cut; the fraction at any later instant follows from the clean intervals since, so nothing
//! has to tick in the background and readers on the hot path only load two atomics. Cuts are rare
//! and take a small lock so that two concurrent 429s compound instead of overwriting each other.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use governor::nanos::Nanos;

use crate::config::Adaptive;

const NEVER: u64 = u64::MAX;

#[derive(Debug)]
pub(super) struct Aimd {
    cfg: Adaptive,
    /// f64 bits of the fraction right after the last cut.
    cut_to: AtomicU64,
    /// Reading of the last cut, NEVER before the first.
    cut_at: AtomicU64,
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

    /// An upstream 429 at `now`: multiply the current share by the factor, not below the floor.
    pub(super) fn cut(&self, now: Nanos) {
        let _one_at_a_time = self.cutting.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.share(now).fraction;
        let floor = self.cfg.floor.clamp(0.0, 1.0);
        let next = (current * self.cfg.factor).clamp(floor, 1.0);
        // Publish the fraction before the instant: a reader that sees the new instant (Acquire)
        // also sees the new fraction.
        self.cut_to.store(next.to_bits(), Ordering::Release);
        self.cut_at.store(now.as_u64(), Ordering::Release);
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
        a.cut(s(1));
        assert_eq!(a.share(s(1)).fraction, 0.5);
        a.cut(s(2));
        assert_eq!(a.share(s(2)).fraction, 0.25);
        a.cut(s(3));
        assert_eq!(a.share(s(3)).fraction, 0.2);
    }

    #[test]
    fn each_clean_interval_adds_a_step_up_to_full() {
        let a = aimd();
        a.cut(s(10));
        assert_eq!(a.share(s(14)).next_step, Some(s(15)));
        assert_eq!(a.share(s(14)).fraction, 0.5);
        assert!((a.share(s(15)).fraction - 0.6).abs() < 1e-9);
        assert!((a.share(s(34)).fraction - 0.9).abs() < 1e-9);
        assert_eq!(a.share(s(35)), Share::FULL);
        // A cut during recovery starts from the recovered share.
        a.cut(s(21));
        assert!((a.share(s(21)).fraction - 0.35).abs() < 1e-9);
    }
}
