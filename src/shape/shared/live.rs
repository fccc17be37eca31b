//! Live parameters made elsewhere: a `PUT /limits` or an AIMD cut on another instance is in
//! Redis, where every reservation reads it at once; this instance reads it back every
//! [`REFRESH_EVERY`] only so that its `/status` and metrics show it too.

use std::sync::atomic::Ordering;
use std::sync::Weak;
use std::time::Duration;

use super::client::Health;
use super::gcra::{self, Live};
use super::quota;
use super::SharedLimiter;

/// How often an instance reads the live rate back from Redis, so `/status` everywhere shows a
/// change made on any instance (requests use it from the next reservation on regardless).
const REFRESH_EVERY: Duration = Duration::from_millis(500);

impl SharedLimiter {
    /// Reads the live parameters back from Redis (a change or an AIMD cut made by another
    /// instance), with Redis's clock for the AIMD share.
    pub(super) async fn refresh(&self) {
        let key = self.store.params_key(&self.config.name);
        type Read = (
            (Option<u64>, Option<u64>, Option<f64>, Option<u64>),
            (Option<u64>, Option<u64>, Option<u64>),
            (u64, u64),
        );
        let read = self
            .store
            .call(|mut c| async move {
                redis::pipe()
                    .cmd("HMGET")
                    .arg(&key)
                    .arg(&["interval", "burst", "cut_to", "cut_at"])
                    .cmd("HMGET")
                    .arg(&key)
                    .arg(&["quota_count", "quota_window", "quota_margin"])
                    .cmd("TIME")
                    .query_async::<Read>(&mut c)
                    .await
            })
            .await;
        let Ok(((interval, burst, cut_to, cut_at), (count, window, margin), (secs, micros))) = read
        else {
            return;
        };
        if let Some(q) = quota::from_live(count, window, margin) {
            self.set_quota(Some(q));
        }
        let live = Live {
            interval,
            burst,
            cut_to,
            cut_at,
            event_end: None,
        };
        let params = self.params();
        let now = secs * 1_000_000 + micros;
        let share = gcra::share(now, &live, params.aimd);
        let base = interval.unwrap_or(params.interval);
        self.interval
            .store(gcra::effective(base, share), Ordering::Relaxed);
        let burst = burst.unwrap_or(params.burst);
        self.burst
            .store(u32::try_from(burst).unwrap_or(u32::MAX), Ordering::Relaxed);
    }
}

/// Reads the live parameters back every [`REFRESH_EVERY`] until the limiter is dropped.
pub(super) async fn refresh(limiter: Weak<SharedLimiter>) {
    loop {
        tokio::time::sleep(REFRESH_EVERY).await;
        let Some(l) = limiter.upgrade() else { return };
        if l.store.health() == Health::Up {
            l.refresh().await;
            if let Some(leases) = &l.leases {
                leases.refresh().await;
            }
        }
    }
}
