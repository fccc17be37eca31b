//! One key's gate: its bucket, concurrency slots, pause and queue, and the decisions over them.
//!
//! Everything about a key sits behind that key's own mutex, held for a few hundred nanoseconds
//! per decision and never across an await. Keys do not share a lock.
//!
//! **Rate and slot are taken together.** A request leaves only when, at the same instant, a token
//! and a slot (when the limit caps concurrency) are both free; it takes both or neither. Taking a
//! token first and then waiting for a slot would spend rate on a request that is not sending, and
//! when several slots free at once all those token holders would go together, breaking the
//! B + R·t bound. Taking a slot first and then waiting for a token would keep a slot idle. Since
//! nothing is held while waiting, a queued request cannot deadlock the others.
//!
//! **Only the head waits for time.** The head of the queue sleeps until exactly its token time
//! (or the end of a pause), on tokio's timer and on the finer one of `fine.rs`; the others sleep
//! only until their deadline. Whoever frees something (the head's timer, a permit drop, a
//! cancelled head, a live change) runs [`KeyInner::dispatch`], which grants waiters in order for
//! as long as they can go and hands the timer to the new head.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};
use tokio::time::Instant;

use super::bucket::{Bucket, Nanos};
use super::horizon::hint;
use super::learned::Learned;
use super::params::Current;
use super::pause::ProbeState;
use super::queue::{Lane, WaitQueue, WaitState, Waiter};
use super::quota::SlidingLog;
use super::Shared;

/// How late a timer may fire and still have its token accounted at the token's own time. The
/// head is woken on time (see `fine.rs`), but its task may then wait for a worker, so on a busy
/// machine wake-ups still land late now and then. Without the slack every late wake-up would
/// push all later tokens back: at burst 1 and 2 ms per token, 1.2 ms of lateness lost a tenth of
/// the rate (measured: 457/s for 500/s with a 1 ms slack). A longer stall than this is charged
/// to the rate, so an overloaded pacer slows down rather than bursting to catch up.
const TIMER_SLACK: Duration = Duration::from_millis(5);

/// A key's shared state.
pub(super) struct KeyState {
    pub(super) shared: Arc<Shared>,
    inner: Mutex<KeyInner>,
}

pub(super) struct KeyInner {
    bucket: Option<Bucket>,
    pub(super) queue: WaitQueue,
    /// Slots taken by permits of this key (only when the limit caps concurrency).
    pub(super) in_flight: u32,
    pub(super) paused_until: Option<Instant>,
    /// Whether the next release after a pause is a probe, or one is out.
    pub(super) probe: ProbeState,
    /// The quota's release times (only when the limit has a quota).
    pub(super) log: SlidingLog,
    /// What the API's answers said about this key (only when the limit learns).
    pub(super) learned: Learned,
    pub(super) last_used: Instant,
    /// Set when the key table forgot this key; a request that looked it up just before retries.
    pub(super) removed: bool,
}

/// Why a request cannot go right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Blocked {
    Paused(Instant),
    Rate(Instant),
    Slot,
    /// The probe after a pause is out; the key waits for its answer.
    Probe,
}

/// What a request that may go took: a concurrency slot, and whether it is the key's probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Grant {
    pub(super) slot: bool,
    pub(super) probe: Option<u64>,
}

/// What a waiting future learns when it looks at its slot.
pub(super) enum Step {
    Granted {
        waited: Duration,
        grant: Grant,
    },
    Rejected(Option<Duration>),
    /// Still queued; wake up at `until` at the latest. `exact` when that is the head's token
    /// time or pause end, which deserves a more precise wake-up than a deadline.
    Waiting {
        until: Instant,
        exact: bool,
    },
}

// === impl KeyState ===

impl KeyState {
    pub(super) fn new(shared: Arc<Shared>, now: Instant) -> KeyState {
        let inner = KeyInner {
            bucket: None,
            queue: WaitQueue::new(),
            in_flight: 0,
            paused_until: None,
            probe: ProbeState::Idle,
            log: SlidingLog::default(),
            learned: Learned::default(),
            last_used: now,
            removed: false,
        };
        KeyState {
            shared,
            inner: Mutex::new(inner),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, KeyInner> {
        self.inner.lock()
    }

    pub(super) fn try_lock(&self) -> Option<MutexGuard<'_, KeyInner>> {
        self.inner.try_lock()
    }

    /// A permit went away: give its slot back and let the next waiter in.
    pub(super) fn release_slot(&self) {
        let mut inner = self.lock();
        inner.give_back_slot(&self.shared);
        if !inner.queue.is_empty() {
            inner.dispatch(&self.shared, Instant::now(), None);
        }
    }

    /// A waiting future was dropped: leave the queue now, or give back what it was granted.
    pub(super) fn cancel(&self, idx: u32) {
        let now = Instant::now();
        let mut inner = self.lock();
        let was_head = inner.queue.head() == Some(idx);
        let waiter = inner.queue.free(idx);
        let freed_slot = match waiter.state {
            WaitState::Queued => {
                self.shared.dec_depth();
                false
            }
            WaitState::Granted { grant, .. } => {
                // A granted probe that never went leaves the key free for the next one.
                if let Some(id) = grant.probe {
                    inner.probe_answered(&self.shared, id, false, now);
                }
                if self.shared.learn.is_some() {
                    inner.learned.unsent();
                }
                grant.slot
            }
            WaitState::Rejected { .. } => false,
        };
        if freed_slot {
            inner.give_back_slot(&self.shared);
        }
        if was_head || freed_slot {
            inner.dispatch(&self.shared, now, None);
        }
    }
}

// === impl KeyInner ===

impl KeyInner {
    /// Tries to let a request go at `now`, without regard to the queue.
    pub(super) fn pass_now(&mut self, sh: &Shared, now: Instant) -> Result<Grant, Blocked> {
        let reading = sh.epoch.reading(now);
        let cur = sh.params.current(reading);
        self.try_pass(sh, &cur, now, reading)
    }

    /// Takes a token (accounted at reading `at`, else at `now`), a place in the quota and a slot
    /// together, or none of them.
    fn try_pass(
        &mut self,
        sh: &Shared,
        cur: &Current,
        now: Instant,
        at: Nanos,
    ) -> Result<Grant, Blocked> {
        if let Some(until) = self.paused_at(now) {
            return Err(Blocked::Paused(until));
        }
        if self.probe_out() {
            return Err(Blocked::Probe);
        }
        if cur.concurrency.is_some_and(|cap| self.in_flight >= cap) {
            return Err(Blocked::Slot);
        }
        if sh.learn.is_some() {
            self.learned.check(now)?;
        }
        let now_reading = sh.epoch.reading(now);
        // The quota is asked first because asking it takes nothing; it counts actual release
        // times (not credited ones), so a late wake-up never lets a window hold one too many.
        if let Some(quota) = cur.quota {
            let ready = self.log.ready_at(quota);
            if ready > now_reading {
                return Err(Blocked::Rate(sh.epoch.instant(ready)));
            }
        }
        if let Some(bucket) = self.synced_bucket(cur, now_reading) {
            // A token not yet due at the credited time may still be due now.
            let taken = match bucket.take(at) {
                Err(_) if at < now_reading => bucket.take(now_reading),
                taken => taken,
            };
            if let Err(ready) = taken {
                return Err(Blocked::Rate(sh.epoch.instant(ready)));
            }
        }
        if let Some(quota) = cur.quota {
            self.log.record(now_reading, quota);
        }
        if sh.learn.is_some() {
            self.learned.record(now);
        }
        let slot = cur.concurrency.is_some();
        if slot {
            self.in_flight += 1;
            sh.inc_in_flight();
        }
        Ok(Grant {
            slot,
            probe: self.take_probe(),
        })
    }

    /// The bucket, brought in line with the parameters in force (None without a rate).
    pub(super) fn synced_bucket(&mut self, cur: &Current, now: Nanos) -> Option<&mut Bucket> {
        let interval = cur.interval?;
        match &mut self.bucket {
            Some(b) if b.matches(interval, cur.burst) => {}
            Some(b) => b.reshape(interval, cur.burst, now),
            None => self.bucket = Some(Bucket::new(interval, cur.burst)),
        }
        self.bucket.as_mut()
    }

    fn give_back_slot(&mut self, sh: &Shared) {
        self.in_flight = self.in_flight.saturating_sub(1);
        sh.dec_in_flight();
    }

    /// Queues a request that cannot go now, unless the queue is full or its start is already
    /// known to come after its deadline.
    pub(super) fn enqueue(
        &mut self,
        sh: &Shared,
        now: Instant,
        lane: Lane,
        deadline: Instant,
    ) -> Result<u32, crate::Error> {
        let depth = self.queue.len();
        if depth >= sh.queue.max_depth {
            let retry_after = hint(self.horizon(sh, now).start(&self.log, 0), now);
            return Err(sh.queue_full(retry_after));
        }
        let ahead = self.queue.ahead_of(lane);
        let start = self.horizon(sh, now).start(&self.log, ahead);
        if start > deadline {
            return Err(sh.queue_timeout(Some(start - deadline)));
        }
        sh.inc_depth();
        Ok(self.queue.push(lane, Waiter::new(now, deadline)))
    }

    /// Grants waiters in order for as long as they can go, then points the head's timer at
    /// when it can next try. `caller` (a waiter polling right now) is not woken.
    pub(super) fn dispatch(&mut self, sh: &Shared, now: Instant, caller: Option<u32>) {
        let reading = sh.epoch.reading(now);
        let cur = sh.params.current(reading);
        let mut on_schedule = false;
        while let Some(idx) = self.queue.head() {
            let at = self.decision_time(sh, idx, now, on_schedule);
            match self.try_pass(sh, &cur, now, at) {
                Ok(grant) => {
                    on_schedule = at < reading;
                    self.settle(sh, idx, WaitState::Granted { at: now, grant }, caller);
                }
                Err(blocked) => {
                    if self.hold_head(sh, &cur, idx, blocked, now, caller) {
                        return;
                    }
                }
            }
        }
    }

    /// The reading a head's token is accounted at: its token time when the timer woke it at
    /// most [`TIMER_SLACK`] late, so lateness does not accumulate; otherwise now.
    ///
    /// `on_schedule` says the waiter before it in this pass was accounted in the past: the
    /// bucket has been busy all along, so this one's token time is the bucket's next one, and
    /// accounting it there too keeps a late wake-up from pushing back every later slot. (Only
    /// then: after a pause or a wait for a slot the bucket may have rested, and accounting in
    /// the past would hand out more than a full bucket.)
    fn decision_time(&self, sh: &Shared, idx: u32, now: Instant, on_schedule: bool) -> Nanos {
        let now = sh.epoch.reading(now);
        let due = match (self.queue.get(idx).due, &self.bucket) {
            (Some(due), _) => Some(due),
            (None, Some(bucket)) if on_schedule => Some(bucket.ready_at()),
            _ => None,
        };
        match due {
            Some(due) if due <= now => due.max(now.saturating_sub(Nanos::from(TIMER_SLACK))),
            _ => now,
        }
    }

    /// The head cannot go: keep it waiting with the right timer (true), or answer it now if it
    /// cannot start by its deadline (false, and the next waiter becomes head).
    fn hold_head(
        &mut self,
        sh: &Shared,
        cur: &Current,
        idx: u32,
        blocked: Blocked,
        now: Instant,
        caller: Option<u32>,
    ) -> bool {
        let deadline = self.queue.get(idx).deadline;
        let until = match blocked {
            Blocked::Paused(t) | Blocked::Rate(t) => Some(t),
            Blocked::Slot | Blocked::Probe => None,
        };
        if deadline <= now || until.is_some_and(|t| t > deadline) {
            let retry_after = match blocked {
                Blocked::Paused(end) => hint(end, now),
                Blocked::Rate(ready) => hint(ready, deadline),
                Blocked::Slot | Blocked::Probe => None,
            };
            self.settle(sh, idx, WaitState::Rejected { retry_after }, caller);
            return false;
        }
        // The AIMD share may grow before the token time: look again then.
        let step = cur.next_step.map(|s| sh.epoch.instant(s));
        let wake_at = match blocked {
            Blocked::Rate(t) => Some(step.map_or(t, |s| s.min(t))),
            _ => until,
        };
        let w = self.queue.get_mut(idx);
        w.due = match blocked {
            Blocked::Rate(t) => Some(sh.epoch.reading(t)),
            _ => None,
        };
        if w.wake_at != wake_at {
            w.wake_at = wake_at;
            match &w.waker {
                Some(waker) if caller != Some(idx) => waker.wake_by_ref(),
                _ => {}
            }
        }
        true
    }

    /// Takes a queued waiter out of the queue with its outcome, and wakes it.
    pub(super) fn settle(&mut self, sh: &Shared, idx: u32, state: WaitState, caller: Option<u32>) {
        if self.queue.unlink(idx) {
            sh.dec_depth();
        }
        let w = self.queue.get_mut(idx);
        w.state = state;
        w.wake_at = None;
        w.due = None;
        if caller != Some(idx) {
            if let Some(waker) = w.waker.take() {
                waker.wake();
            }
        }
    }

    /// Whether the key can be forgotten: nothing queued, in flight, paused or probing, unused for
    /// `idle`, its bucket full again and its quota log out of the window (so forgetting it gives
    /// nothing away).
    pub(super) fn is_idle(&self, sh: &Shared, now: Instant, idle: Duration) -> bool {
        self.queue.allocated() == 0
            && self.in_flight == 0
            && self.paused_at(now).is_none()
            && !self.probe_out()
            && self.learned.is_idle(now)
            && self.log.rested(
                sh.params.current(sh.epoch.reading(now)).quota,
                sh.epoch.reading(now),
            )
            && now.saturating_duration_since(self.last_used) >= idle
            && self
                .bucket
                .as_ref()
                .is_none_or(|b| sh.epoch.instant(b.tat()) <= now)
    }
}
