//! Retry-After pauses: a key the upstream throttled releases nothing until the pause ends, and
//! then one probe.
//!
//! The pause is bounded by the caller (`retry.max_pause`), so a Retry-After of 1000 s does not
//! stop a key for 1000 s when the API accepts again sooner; instead, when the pause ends exactly
//! one request goes. Its answer decides: a 429 pauses the key again (bounded again), anything
//! else resumes it. Meanwhile the key's bucket and quota gain no credit: the probe leaves at the
//! end of the pause and the rest follow at the rate, since re-bursting into the API's next
//! window is what drew the next 429.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::bucket::Nanos;
use super::gate::{KeyInner, KeyState};
use super::Shared;
use crate::shape::Probe;

/// How long a key waits for the pause a probe's 429 brings. The retry layer pauses the key
/// right after the probe's answer comes back; should that not happen (a route whose 429s pause
/// other limits), the key probes again after this.
const PROBE_GRACE: Duration = Duration::from_secs(1);

/// Where a key stands with its probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ProbeState {
    Idle,
    /// Paused: the first release after the pause is a probe.
    Next,
    /// The probe with this number is out; nothing else goes until its answer.
    Out(u64),
}

/// Held by the probe's permit; dropping it tells the key the answer.
pub(super) struct ProbeGuard {
    key: Arc<KeyState>,
    id: u64,
    throttled: AtomicBool,
}

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
        self.probe = ProbeState::Next;
        self.last_used = self.last_used.max(now);
        let (reading, end) = (sh.epoch.reading(now), sh.epoch.reading(until));
        sh.pauses.note(end);
        let cur = sh.params.current(reading);
        if let Some(bucket) = self.synced_bucket(&cur, reading) {
            bucket.hold_until(end);
        }
        if let Some(quota) = cur.quota {
            self.log.hold_until(end, quota);
        }
        self.sweep_hopeless(sh, now);
        self.dispatch(sh, now, None);
    }

    /// When the key's pause ends, if it is paused at `now`.
    pub(super) fn paused_at(&self, now: Instant) -> Option<Instant> {
        self.paused_until.filter(|&p| p > now)
    }

    pub(super) fn probe_out(&self) -> bool {
        matches!(self.probe, ProbeState::Out(_))
    }

    /// A request is released: when it is the first after a pause, it is the probe.
    pub(super) fn take_probe(&mut self) -> Option<u64> {
        if self.probe != ProbeState::Next {
            return None;
        }
        let id = next_probe_id();
        self.probe = ProbeState::Out(id);
        Some(id)
    }

    /// The probe `id` has its answer: a 429 holds the key for the pause it brings, anything else
    /// resumes it. An answer for an older probe changes nothing.
    pub(super) fn probe_answered(&mut self, sh: &Shared, id: u64, throttled: bool, now: Instant) {
        if self.probe != ProbeState::Out(id) || self.removed {
            return;
        }
        if throttled {
            self.pause(sh, now, now + PROBE_GRACE);
            return;
        }
        self.probe = ProbeState::Idle;
        if !self.queue.is_empty() {
            self.dispatch(sh, now, None);
        }
    }
}

/// Probe numbers, unique in the process, so an answer is never taken for a later probe's.
fn next_probe_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

// === impl ProbeGuard ===

impl ProbeGuard {
    pub(super) fn new(key: Arc<KeyState>, id: u64) -> ProbeGuard {
        ProbeGuard {
            key,
            id,
            throttled: AtomicBool::new(false),
        }
    }
}

impl Probe for ProbeGuard {
    fn throttled(&self) {
        self.throttled.store(true, Ordering::Relaxed);
    }
}

impl Drop for ProbeGuard {
    fn drop(&mut self) {
        let throttled = self.throttled.load(Ordering::Relaxed);
        let mut inner = self.key.lock();
        inner.probe_answered(&self.key.shared, self.id, throttled, Instant::now());
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
