//! Retry-After pauses: a key the upstream throttled releases nothing until the pause ends.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::nanos::Nanos;
use tokio::time::Instant;

use super::gate::KeyInner;
use super::Shared;

/// The latest pause end across a limit's keys, for `state()` without visiting every key.
/// Pauses are only ever extended, so the maximum is exact.
#[derive(Debug, Default)]
pub(super) struct PauseMark(AtomicU64);

// === impl PauseMark ===

impl PauseMark {
    pub(super) fn note(&self, end: Nanos) {
        self.0.fetch_max(end.as_u64(), Ordering::Relaxed);
    }

    /// How long until the longest pause ends, if one is running.
    pub(super) fn remaining(&self, now: Nanos) -> Option<Duration> {
        let end = self.0.load(Ordering::Relaxed);
        (end > now.as_u64()).then(|| Duration::from_nanos(end - now.as_u64()))
    }
}

// === impl KeyInner ===

impl KeyInner {
    /// Pauses the key until `until` (extending, never shortening, a running pause). Waiters that
    /// can no longer start before their deadline are answered at once with the time left, and
    /// the head's timer moves to the end of the pause.
    pub(super) fn pause(&mut self, sh: &Shared, now: Instant, until: Instant) {
        let until = self.paused_until.map_or(until, |p| p.max(until));
        self.paused_until = Some(until);
        self.last_used = self.last_used.max(now);
        sh.pauses.note(sh.epoch.reading(until));
        self.sweep_hopeless(sh, now);
        self.dispatch(sh, now, None);
    }

    /// When the key's pause ends, if it is paused at `now`.
    pub(super) fn paused_at(&self, now: Instant) -> Option<Instant> {
        self.paused_until.filter(|&p| p > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_keeps_the_latest_end() {
        let m = PauseMark::default();
        assert_eq!(m.remaining(Nanos::from(0)), None);
        m.note(Nanos::from(5_000));
        m.note(Nanos::from(3_000));
        assert_eq!(
            m.remaining(Nanos::from(1_000)),
            Some(Duration::from_nanos(4_000))
        );
        assert_eq!(m.remaining(Nanos::from(5_000)), None);
    }
}
