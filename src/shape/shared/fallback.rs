//! `on_unavailable`: what a shared limit does while Redis does not answer.
//!
//! `local` enforces the limit in this process at `1/instances` of it (rate, burst and cap), so
//! the fleet together stays near the limit. It starts after the last reservation this instance
//! made in Redis: requests already queued there still go at the shared rate, and local
//! admissions on top of them would exceed the limit (a fallback under a long queue did: 150 in
//! one second for a 50/s limit); `reject` answers 503 `pacer.shared.unavailable`;
//! `allow` lets requests through unshaped and counts them. Which one applies follows the store's
//! health, which the background check returns to `Up` when Redis answers again.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::client::Health;
use super::SharedLimiter;
use crate::config::{Limit, OnUnavailable, Quota, Rate};
use crate::error::Error;
use crate::shape::{Acquire, LimitUpdate, Limiter, Permit};

impl SharedLimiter {
    /// Serves a request while Redis is unavailable.
    pub(super) async fn unavailable(&self, req: Acquire) -> Result<Permit, Error> {
        match self.store.config.on_unavailable {
            OnUnavailable::Local => {
                if let Some(until) = self.reserved_until() {
                    if until > req.deadline {
                        let now = tokio::time::Instant::now();
                        return Err(self.refused(Some(until.saturating_duration_since(now))));
                    }
                    tokio::time::sleep_until(until).await;
                }
                self.fallback.acquire(req).await
            }
            OnUnavailable::Reject => Err(Error::SharedUnavailable {
                limit: self.config.name.clone(),
            }),
            OnUnavailable::Allow => {
                self.unshaped.fetch_add(1, Ordering::Relaxed);
                Ok(Permit::free(Duration::ZERO))
            }
        }
    }
}

impl SharedLimiter {
    /// Notes that a reservation of this instance goes at `until`.
    pub(super) fn note_reserved(&self, until: tokio::time::Instant) {
        let mut last = self.reserved_until.lock();
        *last = Some(last.map_or(until, |t| t.max(until)));
    }

    /// When the last reservation this instance made in Redis goes, if still ahead.
    fn reserved_until(&self) -> Option<tokio::time::Instant> {
        let last = *self.reserved_until.lock();
        last.filter(|t| *t > tokio::time::Instant::now())
    }
}

/// This instance's share of a limit: the same limit with `1/instances` of its budget.
pub(super) fn share(config: &Limit, instances: u32) -> Limit {
    let n = instances.max(1);
    Limit {
        rate: config.rate.map(|r| share_rate(r, n)),
        burst: (config.burst / n).max(1),
        concurrency: config.concurrency.map(|c| (c / n).max(1)),
        quota: config.quota.map(|q| share_quota(q, n)),
        ..config.clone()
    }
}

/// A live change, scaled to this instance's share.
pub(super) fn share_update(update: &LimitUpdate, instances: u32) -> LimitUpdate {
    let n = instances.max(1);
    LimitUpdate {
        rate: update.rate.map(|r| share_rate(r, n)),
        burst: update.burst.map(|b| (b / n).max(1)),
        concurrency: update.concurrency.map(|c| (c / n).max(1)),
        quota: update.quota.map(|q| share_quota(q, n)),
    }
}

/// `count / n` per window (at least one), so the fleet together never holds more than the quota.
fn share_quota(quota: Quota, n: u32) -> Quota {
    Quota {
        count: (quota.count / n).max(1),
        ..quota
    }
}

/// `count / n` per period, kept exact by stretching the period (300/min over 3 is 300/3min).
fn share_rate(rate: Rate, n: u32) -> Rate {
    Rate {
        count: rate.count,
        per: rate.per * n,
    }
}

/// The `mode` of a shared limit in `/status` and the metrics.
pub(super) fn mode_name(health: Health, on_unavailable: OnUnavailable) -> &'static str {
    match (health, on_unavailable) {
        (Health::Up | Health::Connecting, _) => "shared",
        (Health::Down, OnUnavailable::Local) => "local_fallback",
        (Health::Down, OnUnavailable::Reject) => "reject",
        (Health::Down, OnUnavailable::Allow) => "allow",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_is_the_limit_over_instances() {
        let rate = Rate {
            count: 300,
            per: Duration::from_secs(60),
        };
        let shared = share_rate(rate, 3);
        assert!((shared.per_second() - 300.0 / 180.0).abs() < 1e-9);
        assert_eq!(shared.interval(), Duration::from_millis(600));
    }
}
