//! A limit's live parameters: rate, burst and concurrency as configured or last changed through
//! [`Limiter::update`](crate::shape::Limiter::update), with the AIMD share on top.
//!
//! Every decision reads them, so they are atomics; buckets compare what they were built with and
//! reshape on the next decision when it changed, which is how a change reaches every key without
//! walking them all. Writes (admin changes) are rare and serialised by a lock.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use parking_lot::Mutex;

use super::adaptive::{Aimd, Share};
use super::bucket::Nanos;
use super::quota::QuotaParams;
use crate::config::{Limit, Quota, Rate};
use crate::shape::{LimitUpdate, UpdateError};

#[derive(Debug)]
pub(super) struct Params {
    /// Base emission interval in nanoseconds; 0 when the limit has no rate.
    interval: AtomicU64,
    burst: AtomicU32,
    /// 0 when the limit has no concurrency cap.
    concurrency: AtomicU32,
    /// The quota's count (0 without a quota), window and margin in nanoseconds.
    quota_count: AtomicU32,
    quota_window: AtomicU64,
    quota_margin: AtomicU64,
    /// The base rate as written, for `state()`; also serialises writers.
    rate: Mutex<Option<Rate>>,
    aimd: Option<Aimd>,
}

/// The parameters in force at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Current {
    /// Effective emission interval (base interval / AIMD share); None without a rate.
    pub(super) interval: Option<Nanos>,
    pub(super) burst: u32,
    pub(super) concurrency: Option<u32>,
    pub(super) quota: Option<QuotaParams>,
    /// Reading at which the AIMD share next grows; a head sleeping longer wakes then.
    pub(super) next_step: Option<Nanos>,
}

// === impl Params ===

impl Params {
    pub(super) fn new(limit: &Limit) -> Params {
        Params {
            interval: AtomicU64::new(limit.rate.map_or(0, interval_of)),
            burst: AtomicU32::new(limit.burst.max(1)),
            concurrency: AtomicU32::new(limit.concurrency.unwrap_or(0)),
            quota_count: AtomicU32::new(limit.quota.map_or(0, |q| q.count)),
            quota_window: AtomicU64::new(limit.quota.map_or(0, |q| nanos(q.window))),
            quota_margin: AtomicU64::new(limit.quota.map_or(0, |q| nanos(q.margin))),
            rate: Mutex::new(limit.rate),
            aimd: limit.adaptive.map(Aimd::new),
        }
    }

    pub(super) fn current(&self, now: Nanos) -> Current {
        let base = self.interval.load(Ordering::Relaxed);
        let share = self.share(now);
        let interval = (base > 0).then(|| {
            if share.fraction >= 1.0 {
                Nanos::from(base)
            } else {
                Nanos::from((base as f64 / share.fraction).round() as u64)
            }
        });
        Current {
            interval,
            burst: self.burst.load(Ordering::Relaxed),
            concurrency: Some(self.concurrency.load(Ordering::Relaxed)).filter(|&c| c > 0),
            quota: self.quota(),
            next_step: share.next_step.filter(|_| base > 0),
        }
    }

    /// Applies a live change; zero values are refused and change nothing.
    pub(super) fn update(&self, update: &LimitUpdate) -> Result<(), UpdateError> {
        if let Some(rate) = update.rate {
            if rate.count == 0 || rate.per.is_zero() {
                return Err(UpdateError::RateZero(rate));
            }
        }
        if update.burst == Some(0) {
            return Err(UpdateError::BurstZero);
        }
        if update.concurrency == Some(0) {
            return Err(UpdateError::ConcurrencyZero);
        }
        if update
            .quota
            .is_some_and(|q| q.count == 0 || q.window.is_zero())
        {
            return Err(UpdateError::QuotaZero);
        }
        let mut rate = self.rate.lock();
        if let Some(new) = update.rate {
            *rate = Some(new);
            self.interval.store(interval_of(new), Ordering::Relaxed);
        }
        if let Some(burst) = update.burst {
            self.burst.store(burst, Ordering::Relaxed);
        }
        if let Some(concurrency) = update.concurrency {
            // 0 is how this limiter spells "no cap".
            let cap = if concurrency == crate::shape::NO_CAP {
                0
            } else {
                concurrency
            };
            self.concurrency.store(cap, Ordering::Relaxed);
        }
        if let Some(quota) = update.quota {
            // Window and margin before the count: a reader that sees the new count (the one
            // that turns a quota on) sees them too.
            self.quota_window
                .store(nanos(quota.window), Ordering::Relaxed);
            self.quota_margin
                .store(nanos(quota.margin), Ordering::Relaxed);
            self.quota_count.store(quota.count, Ordering::Release);
        }
        Ok(())
    }

    fn quota(&self) -> Option<QuotaParams> {
        let count = self.quota_count.load(Ordering::Acquire);
        (count > 0).then(|| {
            let window = Nanos::from(self.quota_window.load(Ordering::Relaxed));
            let margin = Nanos::from(self.quota_margin.load(Ordering::Relaxed));
            QuotaParams {
                count,
                window,
                span: window + margin,
            }
        })
    }

    /// The quota as configured or last changed, for `state()`.
    pub(super) fn quota_config(&self) -> Option<Quota> {
        self.quota().map(|q| Quota {
            count: q.count,
            window: q.window.into(),
            margin: q.span.saturating_sub(q.window).into(),
        })
    }

    /// An upstream 429 at `now` that pauses its key until `until`: cut the effective rate when
    /// adaptive (once per congestion event).
    pub(super) fn throttled(&self, now: Nanos, until: Nanos) {
        if let Some(aimd) = &self.aimd {
            aimd.cut(now, until);
        }
    }

    /// How many times AIMD cut the rate.
    pub(super) fn cuts(&self) -> u64 {
        self.aimd.as_ref().map_or(0, Aimd::cuts)
    }

    /// The base rate (configured, or as last changed) in requests per second.
    pub(super) fn base_per_second(&self) -> Option<f64> {
        let rate = self.rate.lock();
        rate.map(|r| r.per_second())
    }

    /// The rate in force at `now` in requests per second.
    pub(super) fn effective_per_second(&self, now: Nanos) -> Option<f64> {
        self.base_per_second()
            .map(|base| base * self.share(now).fraction)
    }

    fn share(&self, now: Nanos) -> Share {
        self.aimd.as_ref().map_or(Share::FULL, |a| a.share(now))
    }
}

fn nanos(d: std::time::Duration) -> u64 {
    d.as_nanos().min(u128::from(u64::MAX)) as u64
}

/// A rate's emission interval in nanoseconds (at least 1).
fn interval_of(rate: Rate) -> u64 {
    let per = rate.per.as_nanos();
    (per / u128::from(rate.count.max(1))).clamp(1, u128::from(u64::MAX)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Adaptive, KeyKind, Mode, Queue};
    use std::time::Duration;

    fn limit(adaptive: bool) -> Limit {
        Limit {
            name: "l".into(),
            rate: Some(Rate {
                count: 10,
                per: Duration::from_secs(1),
            }),
            burst: 2,
            quota: None,
            concurrency: None,
            key: KeyKind::Global,
            mode: Mode::Queue,
            queue: Queue {
                max_depth: 10,
                max_wait: Duration::from_secs(1),
            },
            max_keys: 10,
            key_idle: Duration::from_secs(60),
            adaptive: adaptive.then_some(Adaptive {
                factor: 0.5,
                floor: 0.1,
                step: 0.1,
                interval: Duration::from_secs(5),
            }),
        }
    }

    #[test]
    fn zero_values_are_refused_and_change_nothing() {
        let p = Params::new(&limit(false));
        let before = p.current(Nanos::from(0));
        for bad in [
            LimitUpdate {
                rate: Some(Rate {
                    count: 0,
                    per: Duration::from_secs(1),
                }),
                burst: Some(3),
                ..Default::default()
            },
            LimitUpdate {
                burst: Some(0),
                ..Default::default()
            },
            LimitUpdate {
                concurrency: Some(0),
                ..Default::default()
            },
        ] {
            assert!(p.update(&bad).is_err());
        }
        assert_eq!(p.current(Nanos::from(0)), before);
    }

    #[test]
    fn aimd_stretches_the_interval() {
        let p = Params::new(&limit(true));
        assert_eq!(
            p.current(Nanos::from(0)).interval,
            Some(Nanos::from(100_000_000))
        );
        p.throttled(Nanos::from(0), Nanos::from(0));
        let cur = p.current(Nanos::from(1));
        assert_eq!(cur.interval, Some(Nanos::from(200_000_000)));
        assert_eq!(cur.next_step, Some(Nanos::from(5_000_000_000)));
        assert_eq!(p.effective_per_second(Nanos::from(1)), Some(5.0));
        assert_eq!(p.base_per_second(), Some(10.0));
    }
}
