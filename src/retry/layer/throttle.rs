//! What the retry layer does with an upstream 429 beyond re-sending: read how long it asked to
//! wait, in its upstream's unit, and pause the limit keys the route's 429s pause.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::Attempts;
use crate::config;
use crate::exchange::{Downstream, Passed, Target};
use crate::retry::retry_after_in;

// === impl Attempts ===

impl<S> Attempts<S>
where
    S: Downstream,
{
    /// How long the upstream's 429 asked to wait, read in its upstream's unit.
    pub(super) fn asked_wait(&self, headers: &http::HeaderMap) -> Option<Duration> {
        let unit = self
            .target
            .as_ref()
            .map_or_else(Default::default, |t| t.retry_after_unit);
        retry_after_in(headers, SystemTime::now(), unit)
    }

    /// Pauses the limit keys the request passed that the route's 429s pause (all unless it
    /// names some), so their siblings wait instead of each collecting a 429 of their own.
    pub(super) fn pause(&self, passed: &Passed, wait: Duration) {
        for &(i, key) in &passed.keys {
            if !self.shared.route.pauses(i) {
                continue;
            }
            let limiter = self.shared.limits.limiter(i);
            limiter.on_throttled(key, wait);
            tracing::warn!(
                limit = limiter.name(),
                retry_after_ms = wait.as_millis() as u64,
                "upstream answered 429; pausing the limit key"
            );
        }
    }

    pub(super) fn paused_through(&self, until: Instant) -> bool {
        let limits = &self.shared.limits;
        self.shared.route.order().iter().any(|&i| {
            let cfg = limits.config(i);
            cfg.mode == config::Mode::Queue
                && limits
                    .limiter(i)
                    .paused_until(limits.key_for(i, &self.parts.headers, self.client_ip()))
                    .is_some_and(|p| p >= until)
        })
    }

    fn client_ip(&self) -> std::net::IpAddr {
        Target::ip_of(self.target.as_ref())
    }
}
