//! A key's quota: no window of the quota's length ever holds more than N releases.
//!
//! Platforms count "N requests per window of W" in fixed windows whose alignment pacer cannot
//! know. A token bucket with rate N/W and burst b lets N + b through in one such window; a
//! sliding log does not: it keeps the times of the key's last N releases, and a request may go
//! when the N-th previous release is a whole window (plus a margin for latency jitter between
//! pacer and the API) old. Then any window of length W, aligned however, holds at most N, and
//! after a quiet window all N can go at once.
//!
//! Memory: one u64 per release kept, N per live key (300/min: 2.4 KB a key), allocated as the
//! key uses its quota.

use std::collections::VecDeque;

use super::bucket::Nanos;

/// A quota in force: N releases per window, and the span a release counts for (window +
/// margin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct QuotaParams {
    pub(super) count: u32,
    pub(super) window: Nanos,
    pub(super) span: Nanos,
}

/// The readings of a key's last releases, oldest first, at most the quota's count. Stored
/// [`BASE`] higher than the readings, so a pause near the limit's start can note releases
/// "before" its epoch.
#[derive(Debug, Default)]
pub(super) struct SlidingLog(VecDeque<u64>);

/// Far beyond any window (146 years), far below u64's end.
const BASE: u64 = 1 << 62;

fn stored(reading: Nanos) -> u64 {
    reading.as_u64().saturating_add(BASE)
}

fn reading(stored: u64) -> Nanos {
    Nanos::from(stored.saturating_sub(BASE))
}

// === impl SlidingLog ===

impl SlidingLog {
    /// The reading from which one more release keeps every window within the quota.
    pub(super) fn ready_at(&self, q: QuotaParams) -> Nanos {
        let n = q.count as usize;
        match self.0.len().checked_sub(n) {
            Some(i) => reading(self.0[i] + q.span.as_u64()),
            None => Nanos::from(0),
        }
    }

    /// The earliest reading the release `k` places from now (0 is the next) can have, given
    /// what the log holds: each release needs the N-th before it a span old.
    pub(super) fn earliest(&self, q: QuotaParams, k: usize, now: Nanos) -> Nanos {
        let n = (q.count as usize).max(1);
        let (rounds, j) = (k / n, k % n);
        let base = match (self.0.len() + j).checked_sub(n) {
            Some(i) => now.max(reading(self.0[i] + q.span.as_u64())),
            None => now,
        };
        base + q.span * rounds as u64
    }

    /// Notes a release at `at`, forgetting what no longer counts.
    pub(super) fn record(&mut self, at: Nanos, q: QuotaParams) {
        let at = self
            .0
            .back()
            .map_or(stored(at), |&last| last.max(stored(at)));
        self.0.push_back(at);
        while self.0.len() > q.count as usize {
            self.0.pop_front();
        }
    }

    /// Whether forgetting the log gives nothing away: its last release is a span old.
    pub(super) fn rested(&self, q: Option<QuotaParams>, now: Nanos) -> bool {
        match (q, self.0.back()) {
            (Some(q), Some(&last)) => reading(last + q.span.as_u64()) <= now,
            _ => true,
        }
    }

    /// A pause until `end`: as if the key had released evenly at the quota's pace up to then,
    /// so one release (the probe) may go at `end` and the next ones follow a window / N apart,
    /// instead of all N at once into the API's next window. Never makes a release earlier.
    pub(super) fn hold_until(&mut self, end: Nanos, q: QuotaParams) {
        let n = q.count as usize;
        let step = q.window.as_u64() / u64::from(q.count.max(1));
        let first = stored(end) - q.span.as_u64().min(BASE);
        let old = std::mem::take(&mut self.0);
        let missing = n.saturating_sub(old.len());
        let kept = old.iter().skip(old.len().saturating_sub(n));
        let padded = std::iter::repeat_n(0, missing).chain(kept.copied());
        // Both sequences rise, so their element-wise maximum rises too: the log stays sorted.
        self.0 = padded
            .enumerate()
            .map(|(j, t)| t.max(first + step * j as u64))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn n(ms: u64) -> Nanos {
        Nanos::from(ms * MS)
    }

    /// 3 per 1 s, margin 50 ms.
    fn q() -> QuotaParams {
        QuotaParams {
            count: 3,
            window: n(1000),
            span: n(1050),
        }
    }

    #[test]
    fn a_whole_quota_at_once_then_a_window_later() {
        let mut log = SlidingLog::default();
        for _ in 0..3 {
            assert_eq!(log.ready_at(q()), n(0));
            log.record(n(500), q());
        }
        assert_eq!(log.ready_at(q()), n(1550));
        assert_eq!(log.earliest(q(), 0, n(600)), n(1550));
        assert_eq!(log.earliest(q(), 3, n(600)), n(2600));
        log.record(n(1550), q());
        assert_eq!(log.ready_at(q()), n(1550));
    }

    #[test]
    fn no_window_ever_holds_more_than_the_count() {
        let mut log = SlidingLog::default();
        let mut sent = Vec::new();
        let mut t = n(0);
        while sent.len() < 50 {
            let ready = log.ready_at(q()).max(t);
            log.record(ready, q());
            sent.push(ready.as_u64());
            t = ready + n(7);
        }
        for (i, &start) in sent.iter().enumerate() {
            let inside = sent[i..].iter().filter(|&&s| s < start + 1000 * MS).count();
            assert!(
                inside <= 3,
                "{inside} releases within a window from {start}"
            );
        }
    }

    #[test]
    fn a_pause_resumes_at_the_pace() {
        let mut log = SlidingLog::default();
        log.record(n(100), q());
        log.hold_until(n(5000), q());
        assert_eq!(log.ready_at(q()), n(5000));
        log.record(n(5000), q());
        assert_eq!(log.ready_at(q()), n(5333) + Nanos::from(333_333));
        assert!(log.rested(Some(q()), n(7000)));
        assert!(!log.rested(Some(q()), n(5100)));
    }
}
