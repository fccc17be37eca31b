//! `learn:`: a key paced to what the API says about it on every answer (see [`crate::ratelimit`]).
//!
//! Each answer that carries `remaining` and `reset` gives the key a **budget**: no more than
//! `remaining` further releases, less those already out and not yet answered (the API counted
//! them or will), until the reset. Past it the rest queue to the reset instant. Within one window
//! the budget only shrinks (a `remaining` that rises mid-window is a lie or an older answer) and
//! its end only comes closer (resets are whole seconds rounded up, so the earliest end told is
//! the truest). When the window ends with the quota known, the next one is assumed whole until
//! its first answer says otherwise.
//!
//! With a quota and a window known (the window is advertised by the IETF families, and is
//! otherwise the longest reset seen), the key is also **paced**: quota / window less the
//! headroom, with a bucket of headroom x quota (at least 1), so releases spread over the window
//! and the window is still filled (rate x window + bucket >= quota): the bucket is full again
//! at the start of each window. A configured rate or quota
//! is a ceiling by construction: its own bucket or sliding log still has to let each release go
//! (`gate.rs` asks learning first, then the quota, then the bucket).
//!
//! Until a key's first answer, one request of it is out at a time: the API has not said its
//! limit yet, and a flood before the first answer is what draws the first 429.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::gate::Blocked;
use crate::config::Learn;
use crate::ratelimit::Advertised;

/// Resets are whole seconds rounded up: an answer whose window ends within this of the window
/// that just closed belongs to that window (it was counted before the end, answered after).
const ROUNDING: Duration = Duration::from_secs(1);

/// A key's learned state.
#[derive(Debug, Default)]
pub(super) struct Learned {
    /// Releases not yet answered.
    outstanding: u32,
    /// Whether an answer (any answer) came back yet.
    answered: bool,
    budget: Option<Budget>,
    /// The end of the last window that closed, to tell its late answers from the next window's.
    closed: Option<Instant>,
    quota: Option<u32>,
    /// The window the API advertised (the IETF families do).
    window_told: Option<Duration>,
    /// The longest reset seen in the current window, and in the one before: without a window
    /// advertised, the window is taken to be that long (one huge reset, a lie, is forgotten
    /// a window later).
    reset_now: Option<Duration>,
    reset_before: Option<Duration>,
    pace: Option<Pace>,
}

#[derive(Debug, Clone, Copy)]
struct Budget {
    left: u32,
    until: Instant,
    /// Told by an answer, not assumed at the start of a window.
    told: bool,
}

/// GCRA on tokio time: a release may go at `tat - tolerance`.
#[derive(Debug, Clone, Copy)]
struct Pace {
    interval: Duration,
    tolerance: Duration,
    tat: Instant,
}

/// What a limit learned, across its keys (the latest answer's), for `/status` and metrics.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LearnedState {
    pub quota: Option<u32>,
    pub window_ms: Option<u64>,
    /// The latest remaining any key was told.
    pub remaining: Option<u32>,
    /// The learned pace in requests per second (quota / window less the headroom).
    pub rate: Option<f64>,
    pub headroom: f64,
    /// Answers that advertised something.
    pub advertised: u64,
}

/// [`LearnedState`] kept in atomics, so answers do not take a limit-wide lock. `u32::MAX` and
/// `u64::MAX` stand for unknown.
#[derive(Debug)]
pub(super) struct LearnedView {
    headroom: f64,
    quota: AtomicU32,
    window_ms: AtomicU64,
    remaining: AtomicU32,
    advertised: AtomicU64,
}

// === impl Learned ===

impl Learned {
    /// Whether the key may release a request at `now`, as far as learning goes.
    pub(super) fn check(&mut self, now: Instant) -> Result<(), Blocked> {
        if !self.answered && self.outstanding > 0 {
            return Err(Blocked::Slot);
        }
        self.roll(now);
        match self.budget {
            Some(b) if b.left == 0 && now < b.until && b.told => {
                return Err(Blocked::Paused(b.until));
            }
            // An assumed window spent before any answer told it: wait for one, or, with none
            // coming, let one request go and ask.
            Some(b) if b.left == 0 && now < b.until && self.outstanding > 0 => {
                return Err(Blocked::Slot);
            }
            _ => {}
        }
        match self.pace {
            Some(p) if now + p.tolerance < p.tat => Err(Blocked::Rate(p.tat - p.tolerance)),
            _ => Ok(()),
        }
    }

    /// A request was released.
    pub(super) fn record(&mut self, now: Instant) {
        self.outstanding = self.outstanding.saturating_add(1);
        if let Some(b) = &mut self.budget {
            b.left = b.left.saturating_sub(1);
        }
        if let Some(p) = &mut self.pace {
            p.tat = p.tat.max(now) + p.interval;
        }
    }

    /// A release was granted but never sent (its waiter went away first).
    pub(super) fn unsent(&mut self) {
        self.outstanding = self.outstanding.saturating_sub(1);
        if let Some(b) = &mut self.budget {
            b.left = b.left.saturating_add(1);
        }
    }

    /// A released request has its answer (`None`: it failed, or said nothing).
    pub(super) fn answered(&mut self, adv: Option<&Advertised>, learn: Learn, now: Instant) {
        self.outstanding = self.outstanding.saturating_sub(1);
        self.answered = true;
        let Some(adv) = adv else { return };
        self.quota = adv.quota.or(self.quota);
        self.window_told = adv.window.or(self.window_told);
        self.reset_now = self.reset_now.max(adv.reset);
        self.repace(learn, now);
        let (Some(remaining), Some(reset)) = (adv.remaining, adv.reset) else {
            return;
        };
        let told = Budget {
            left: remaining.saturating_sub(self.outstanding),
            until: now + reset,
            told: true,
        };
        self.roll(now);
        if self.closed.is_some_and(|c| told.until <= c + ROUNDING) {
            return; // the closed window's late answer, or a reset already past
        }
        self.budget = match self.budget {
            Some(b) if now < b.until && b.told => Some(Budget {
                left: b.left.min(told.left),
                until: b.until.min(told.until),
                told: true,
            }),
            Some(b) if now < b.until => Some(Budget {
                left: b.left.min(told.left),
                ..told
            }),
            _ => Some(told),
        };
    }

    /// Past the end of the budget's window: assume a whole fresh one when the quota and window
    /// are known (its first answer corrects it), else no budget until an answer comes.
    fn roll(&mut self, now: Instant) {
        let Some(b) = self.budget.filter(|b| now >= b.until) else {
            return;
        };
        self.closed = Some(b.until);
        if self.reset_now.is_some() {
            self.reset_before = self.reset_now.take();
        }
        self.budget = match (self.quota, self.window()) {
            (Some(q), Some(w)) => Some(Budget {
                left: q.saturating_sub(self.outstanding),
                until: now + w,
                told: false,
            }),
            _ => None,
        };
        // A new window is a new allowance: the pace's bucket starts it full, so one window takes
        // bucket + rate x window = the whole quota. Carried over, the pace alone would cap a
        // busy key at quota / window less the headroom (95% by default) however the windows
        // fall; the budget, not the pace, is what keeps the window within its quota.
        if let Some(p) = &mut self.pace {
            p.tat = p.tat.min(now);
        }
    }

    /// The window: as advertised, else the longest reset lately seen.
    pub(super) fn window(&self) -> Option<Duration> {
        let seen = self.reset_now.max(self.reset_before);
        self.window_told.or(seen).filter(|w| !w.is_zero())
    }

    /// Sets the pace from the quota and window known.
    fn repace(&mut self, learn: Learn, now: Instant) {
        let (Some(quota), Some(window)) = (self.quota, self.window()) else {
            return;
        };
        let Some(rate) = pace_rate(quota, window, learn) else {
            self.pace = None;
            return;
        };
        let interval = Duration::from_secs_f64(1.0 / rate);
        let bucket = (f64::from(quota) * learn.headroom).ceil().max(1.0);
        let tolerance = interval.mul_f64(bucket - 1.0);
        let tat = self.pace.map_or(now, |p| p.tat);
        self.pace = Some(Pace {
            interval,
            tolerance,
            tat,
        });
    }

    /// Whether forgetting the key loses nothing: nothing out, no budget running.
    pub(super) fn is_idle(&self, now: Instant) -> bool {
        self.outstanding == 0 && self.budget.is_none_or(|b| now >= b.until)
    }
}

/// Requests per second for `quota` per `window` less the headroom; None when nonsensical.
fn pace_rate(quota: u32, window: Duration, learn: Learn) -> Option<f64> {
    let rate = f64::from(quota) / window.as_secs_f64() * (1.0 - learn.headroom);
    (rate.is_finite() && rate > 0.0).then_some(rate)
}

// === impl LearnedView ===

impl LearnedView {
    pub(super) fn new(learn: Learn) -> LearnedView {
        LearnedView {
            headroom: learn.headroom,
            quota: AtomicU32::new(u32::MAX),
            window_ms: AtomicU64::new(u64::MAX),
            remaining: AtomicU32::new(u32::MAX),
            advertised: AtomicU64::new(0),
        }
    }

    /// Notes an answer's reading and the window known after it.
    pub(super) fn note(&self, adv: &Advertised, window: Option<Duration>) {
        self.advertised.fetch_add(1, Ordering::Relaxed);
        if let Some(q) = adv.quota {
            self.quota.store(q, Ordering::Relaxed);
        }
        if let Some(r) = adv.remaining {
            self.remaining.store(r, Ordering::Relaxed);
        }
        if let Some(w) = window {
            let ms = u64::try_from(w.as_millis()).unwrap_or(u64::MAX - 1);
            self.window_ms.store(ms, Ordering::Relaxed);
        }
    }

    pub(super) fn state(&self) -> LearnedState {
        let quota = Some(self.quota.load(Ordering::Relaxed)).filter(|&q| q != u32::MAX);
        let window_ms = Some(self.window_ms.load(Ordering::Relaxed)).filter(|&w| w != u64::MAX);
        let learn = Learn {
            headroom: self.headroom,
        };
        LearnedState {
            quota,
            window_ms,
            remaining: Some(self.remaining.load(Ordering::Relaxed)).filter(|&r| r != u32::MAX),
            rate: quota
                .zip(window_ms)
                .and_then(|(q, w)| pace_rate(q, Duration::from_millis(w), learn)),
            headroom: self.headroom,
            advertised: self.advertised.load(Ordering::Relaxed),
        }
    }
}

// === impl LocalLimiter ===

impl super::LocalLimiter {
    /// [`crate::shape::Limiter::on_advertised`]: the key learns from the answer, and waiters
    /// it now lets go (or holds longer) are dispatched.
    pub(super) fn advertised(&self, key: crate::shape::LimitKey, adv: Option<&Advertised>) {
        let sh = &self.shared;
        let Some(learn) = sh.learn else { return };
        if sh.mode == crate::config::Mode::Observe {
            // Nothing was held back, so no key counts its releases; the limit still shows what
            // the API said.
            if let (Some(view), Some(adv)) = (&sh.learned, adv) {
                view.note(adv, adv.window);
            }
            return;
        }
        let now = Instant::now();
        loop {
            // A full table cannot take the key: its requests are refused anyway.
            let Ok(state) = self.key_state(key, now) else {
                return;
            };
            let mut inner = state.lock();
            if inner.removed {
                continue;
            }
            inner.learned.answered(adv, learn, now);
            if let (Some(view), Some(adv)) = (&sh.learned, adv) {
                view.note(adv, inner.learned.window());
            }
            if !inner.queue.is_empty() {
                inner.sweep_hopeless(sh, now);
                inner.dispatch(sh, now, None);
            }
            return;
        }
    }
}
