//! Shared quotas: `quota: N/W` with `shared: true`, kept in Redis by `quota.lua`.
//!
//! The key's log is a sorted set of release times on Redis's clock (`{prefix}:{limit}:{key}:log`)
//! beside the bucket hash that holds the key's pause, the same `pause` field `gcra.lua`
//! honours; the quota itself comes from the limit's `params` hash when a live change set it.
//! A reservation places the request at the first instant when the N-th previous release is
//! `window + margin` old (as the in-process sliding log does) and answers how long to wait, so
//! the queue is FIFO across instances. The log keeps the last N releases and expires a span
//! after the last one.
//!
//! A cancelled wait takes its release out of the log: that never puts more into a window, and
//! the hash's `cut` (the latest release trimmed from the log) stands in for the N-th previous
//! one when the log holds fewer than N.

use std::time::Duration;

use super::client::{Store, Unavailable};
use super::gcra::{Op, Reply};
use super::SharedLimiter;
use crate::config::Quota;

/// `{prefix}:{limit}:{key}:log`.
fn log_key(bucket: &str) -> String {
    format!("{bucket}:log")
}

impl Store {
    /// One quota operation on a key; `quota` applies unless a live one is set in Redis. The
    /// reply's `tat` is the reservation's number (what [`Op::Release`] gives back) and its
    /// `interval` 0.
    pub async fn quota(
        &self,
        limit: &str,
        key: u64,
        quota: Quota,
        op: Op,
    ) -> Result<Reply, Unavailable> {
        let (name, arg) = op.script_args();
        let bucket = self.bucket_key(limit, key);
        let mut call = self.quota.prepare_invoke();
        call.key(&bucket)
            .key(self.params_key(limit))
            .key(log_key(&bucket))
            .arg(name)
            .arg("")
            .arg(quota.count)
            .arg(micros(quota.window))
            .arg(micros(quota.margin))
            .arg(arg);
        let reply: (u8, u64, u64, u64, u64) = self
            .call(|mut conn| async move { call.invoke_async(&mut conn).await })
            .await?;
        // The script's fourth value is the quota's count; a quota has no emission interval.
        Ok(Reply {
            interval: 0,
            ..Reply::from(reply)
        })
    }
}

impl SharedLimiter {
    /// The quota in force, for `/status` (requests use Redis's, which this follows).
    pub(super) fn quota(&self) -> Option<Quota> {
        *self.quota.lock()
    }

    pub(super) fn set_quota(&self, quota: Option<Quota>) {
        *self.quota.lock() = quota;
    }
}

/// The `params` fields a live quota change sets.
pub(super) fn live_fields(quota: Quota) -> [(&'static str, u64); 3] {
    [
        ("quota_count", u64::from(quota.count)),
        ("quota_window", micros(quota.window)),
        ("quota_margin", micros(quota.margin)),
    ]
}

/// A quota read back from the `params` hash, when a live change set it.
pub(super) fn from_live(
    count: Option<u64>,
    window: Option<u64>,
    margin: Option<u64>,
) -> Option<Quota> {
    Some(Quota {
        count: u32::try_from(count?).ok()?,
        window: Duration::from_micros(window?),
        margin: Duration::from_micros(margin?),
    })
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
