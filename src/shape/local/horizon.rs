//! When queued requests can start at the earliest, and refusing those that cannot make it.
//!
//! The estimate is a lower bound from what is certain: the bucket releases one token per
//! interval after its next ready time, after a pause at most a full bucket goes at once, and a
//! quota lets each release go only a span after the N-th before it.
//! Concurrency can only delay a request further, so a request refused on this bound could not
//! have started in time; one admitted may still time out later at its deadline.

use std::time::Duration;

use tokio::time::Instant;

use super::bucket::Epoch;
use super::gate::KeyInner;
use super::queue::WaitState;
use super::quota::{QuotaParams, SlidingLog};
use super::Shared;

/// Lower bounds on when queued requests can start, from the pause, the bucket and the quota.
pub(super) struct Horizon {
    now: Instant,
    pause_end: Option<Instant>,
    ready: Option<Instant>,
    interval: Duration,
    burst: u32,
    quota: Option<(QuotaParams, Epoch)>,
}

// === impl KeyInner ===

impl KeyInner {
    /// Answers at once every waiter whose earliest possible start comes after its deadline
    /// (after a pause or a rate cut). During a pause the hint is the time left in it.
    pub(super) fn sweep_hopeless(&mut self, sh: &Shared, now: Instant) {
        let horizon = self.horizon(sh, now);
        let mut hopeless = Vec::new();
        let mut position = 0;
        let mut next = self.queue.head();
        while let Some(idx) = next {
            next = self.queue.after(idx);
            let start = horizon.start(&self.log, position);
            let deadline = self.queue.get(idx).deadline;
            if start <= deadline {
                position += 1;
                continue;
            }
            let retry_after = match horizon.pause_end {
                Some(end) => hint(end, now),
                None => hint(start, deadline),
            };
            hopeless.push((idx, retry_after));
        }
        for (idx, retry_after) in hopeless {
            self.settle(sh, idx, WaitState::Rejected { retry_after }, None);
        }
    }

    /// The bounds for this key's queue as they stand at `now`.
    pub(super) fn horizon(&mut self, sh: &Shared, now: Instant) -> Horizon {
        let reading = sh.epoch.reading(now);
        let cur = sh.params.current(reading);
        let ready = self
            .synced_bucket(&cur, reading)
            .map(|b| sh.epoch.instant(b.ready_at()));
        Horizon {
            now,
            pause_end: self.paused_at(now),
            ready,
            interval: cur.interval.map_or(Duration::ZERO, Duration::from),
            burst: cur.burst,
            quota: cur.quota.map(|q| (q, sh.epoch)),
        }
    }
}

// === impl Horizon ===

impl Horizon {
    /// The earliest instant the waiter with `position` others ahead of it could start. A lower
    /// bound (concurrency can only make it later), so nobody is refused who could make it.
    /// `log` is the key's quota log.
    pub(super) fn start(&self, log: &SlidingLog, position: usize) -> Instant {
        let times = |n: usize| {
            self.interval
                .saturating_mul(u32::try_from(n).unwrap_or(u32::MAX))
        };
        let mut start = self.now;
        if let Some(ready) = self.ready {
            // Each release moves the bucket's TAT on by one interval.
            start = start.max(later(ready, times(position)));
        }
        if let Some(end) = self.pause_end {
            // At the end of the pause at most a full bucket can go at once.
            let beyond_burst = (position + 1).saturating_sub(self.burst as usize);
            start = start.max(later(end, times(beyond_burst)));
        }
        if let Some((quota, epoch)) = &self.quota {
            let earliest = log.earliest(*quota, position, epoch.reading(self.now));
            start = start.max(epoch.instant(earliest));
        }
        start
    }
}

/// `t + d`, saturating far in the future instead of overflowing.
fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d)
        .unwrap_or_else(|| t + Duration::from_secs(365 * 24 * 3600))
}

/// The wait from `from` until `until`, when there is one.
pub(super) fn hint(until: Instant, from: Instant) -> Option<Duration> {
    (until > from).then(|| until - from)
}
