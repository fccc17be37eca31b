//! The in-memory limiter: one named limit enforced per key, in this process.
//!
//! - `bucket.rs`: a key's token bucket, GCRA (`shape/gcra.rs`) on tokio time.
//! - `gate.rs`: a key's bucket, slots, pause and queue behind its own lock, and the decisions.
//! - `queue.rs`: the waiters of a key, FIFO with a lane for retries, O(1) removal.
//! - `wait.rs`: the future of a queued request, its view of the gate, and the slot a permit holds.
//! - `fine.rs`: sub-millisecond wake-ups for queue heads, which tokio's timer cannot give.
//! - `keys.rs`: the bounded, sharded table of live keys with idle expiry.
//! - `params.rs` and `adaptive.rs`: live rate, burst and concurrency, and AIMD on top.
//! - `horizon.rs`: the earliest start of queued requests, for refusing early.
//! - `pause.rs`: Retry-After pauses and the probe that ends them.
//! - `quota.rs`: `quota: N/W`, a sliding log of the key's last N releases.
//! - `learned.rs`: `learn:`, a key's budget and pace from the API's rate-limit headers.
//!
//! The decision is made when [`Limiter::acquire`] is called: a request that can go gets a ready
//! future (no waiting, no queue), one that cannot is queued at once, so its place in line is
//! its arrival order. The returned future only waits.

mod adaptive;
mod bucket;
mod fine;
mod gate;
mod horizon;
mod keys;
mod learned;
mod params;
mod pause;
mod queue;
mod quota;
mod wait;

use std::borrow::Cow;
use std::future::ready;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use self::bucket::Epoch;
use self::gate::{Blocked, KeyState};
use self::keys::KeyTable;
pub use self::learned::LearnedState;
use self::learned::LearnedView;
use self::params::Params;
use self::pause::PauseMark;
use self::queue::Lane;
use self::wait::{permit, Wait};
use super::{
    Acquire, AcquireFuture, LimitKey, LimitState, LimitUpdate, Limiter, Permit, Priority,
    QuotaState, UpdateError,
};
use crate::config::{KeyKind, Learn, Limit, Mode, Queue, Rate};
use crate::error::Error;

/// The hint of a refusal whose wait is unknown or already over.
const UNKNOWN_WAIT: Duration = Duration::from_secs(1);

/// The in-memory [`Limiter`].
pub struct LocalLimiter {
    shared: Arc<Shared>,
    keys: Keys,
    /// The rate in the configuration, reported next to the effective one.
    configured: Option<Rate>,
    key_kind: String,
}

/// What a limit's keys and waiting futures share.
pub(super) struct Shared {
    name: String,
    mode: Mode,
    queue: Queue,
    epoch: Epoch,
    params: Params,
    in_flight: AtomicUsize,
    queue_depth: AtomicUsize,
    pauses: PauseMark,
    /// `learn:`, and what the limit learned across its keys.
    learn: Option<Learn>,
    learned: Option<LearnedView>,
}

/// What [`LocalLimiter::admit`] decided for a request it did not refuse.
enum Admitted {
    Now(Permit),
    Queued(Wait),
}

/// A global limit has one key and no table to look it up in.
enum Keys {
    Global(Arc<KeyState>),
    Table(KeyTable),
}

// === impl LocalLimiter ===

impl LocalLimiter {
    pub fn new(config: Limit) -> LocalLimiter {
        LocalLimiter::learning(config, None)
    }

    /// A limiter that, with `learn`, paces its keys to what the API's answers advertise.
    pub fn learning(config: Limit, learn: Option<Learn>) -> LocalLimiter {
        let now = Instant::now();
        let shared = Arc::new(Shared {
            params: Params::new(&config),
            name: config.name,
            mode: config.mode,
            queue: config.queue,
            epoch: Epoch::new(now),
            in_flight: AtomicUsize::new(0),
            queue_depth: AtomicUsize::new(0),
            pauses: PauseMark::default(),
            learn,
            learned: learn.map(LearnedView::new),
        });
        let keys = match config.key {
            KeyKind::Global => Keys::Global(Arc::new(KeyState::new(Arc::clone(&shared), now))),
            _ => Keys::Table(KeyTable::new(config.max_keys, config.key_idle)),
        };
        LocalLimiter {
            shared,
            keys,
            configured: config.rate,
            key_kind: key_kind_name(&config.key),
        }
    }

    /// The key's state, created when new. Global limits skip the table.
    fn key_state(&self, key: LimitKey, now: Instant) -> Result<Cow<'_, Arc<KeyState>>, Error> {
        match &self.keys {
            Keys::Global(state) => Ok(Cow::Borrowed(state)),
            Keys::Table(table) => table
                .get_or_insert(&self.shared, key, now)
                .map(Cow::Owned)
                .map_err(|_| Error::KeysExhausted {
                    limit: self.shared.name.clone(),
                }),
        }
    }

    /// Lets the request go now, queues it, or refuses it.
    fn admit(&self, req: Acquire, now: Instant) -> Result<Admitted, Error> {
        let sh = &self.shared;
        let lane = match req.priority {
            Priority::Normal => Lane::Normal,
            Priority::Retry => Lane::Retry,
        };
        // The limit's max_wait bounds the time in its queue whatever the caller's deadline.
        let deadline = now
            .checked_add(sh.queue.max_wait)
            .map_or(req.deadline, |cap| cap.min(req.deadline));
        loop {
            let key = self.key_state(req.key, now)?;
            let mut inner = key.lock();
            if inner.removed {
                continue; // expired between the lookup and the lock: look it up again
            }
            inner.last_used = now;
            if inner.queue.ahead_of(lane) == 0 {
                match inner.pass_now(sh, now) {
                    Ok(grant) => return Ok(Admitted::Now(permit(&key, Duration::ZERO, grant))),
                    Err(blocked) if sh.mode == Mode::Reject => {
                        return Err(sh.rate_limited(blocked, now));
                    }
                    Err(_) => {}
                }
            }
            let idx = inner.enqueue(sh, now, lane, deadline)?;
            drop(inner);
            return Ok(Admitted::Queued(Wait::new(key.into_owned(), idx, deadline)));
        }
    }

    /// Every live key's state.
    fn all_keys(&self) -> Vec<Arc<KeyState>> {
        match &self.keys {
            Keys::Global(state) => vec![Arc::clone(state)],
            Keys::Table(table) => table.all(),
        }
    }
}

impl Limiter for LocalLimiter {
    fn name(&self) -> &str {
        &self.shared.name
    }

    fn acquire(&self, req: Acquire) -> AcquireFuture<'_> {
        if self.shared.mode == Mode::Observe {
            return Box::pin(ready(Ok(Permit::free(Duration::ZERO))));
        }
        match self.admit(req, Instant::now()) {
            Ok(Admitted::Now(permit)) => Box::pin(ready(Ok(permit))),
            Ok(Admitted::Queued(wait)) => Box::pin(wait),
            Err(e) => Box::pin(ready(Err(e))),
        }
    }

    fn on_throttled(&self, key: LimitKey, retry_after: Duration) {
        let now = Instant::now();
        let until = now
            .checked_add(retry_after)
            .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600));
        let epoch = &self.shared.epoch;
        self.shared
            .params
            .throttled(epoch.reading(now), epoch.reading(until));
        if self.shared.mode == Mode::Observe {
            return; // observe never holds back; the effective rate above still shows the cut
        }
        loop {
            // A full table cannot take the key: its requests are refused anyway.
            let Ok(state) = self.key_state(key, now) else {
                return;
            };
            let mut inner = state.lock();
            if !inner.removed {
                inner.pause(&self.shared, now, until);
                return;
            }
        }
    }

    fn learns(&self) -> bool {
        self.shared.learn.is_some()
    }

    fn on_advertised(&self, key: LimitKey, advertised: Option<&crate::ratelimit::Advertised>) {
        self.advertised(key, advertised);
    }

    fn paused_until(&self, key: LimitKey) -> Option<Instant> {
        let now = Instant::now();
        let state = match &self.keys {
            Keys::Global(state) => Arc::clone(state),
            Keys::Table(table) => table.get(key)?,
        };
        let inner = state.lock();
        inner.paused_at(now).filter(|_| !inner.removed)
    }

    fn state(&self) -> LimitState {
        let sh = &self.shared;
        let reading = sh.epoch.reading(Instant::now());
        let cur = sh.params.current(reading);
        LimitState {
            name: sh.name.clone(),
            mode: mode_name(sh.mode),
            key: self.key_kind.clone(),
            rate: self.configured.map(|r| r.per_second()),
            effective_rate: sh.params.effective_per_second(reading),
            burst: cur.burst,
            quota: sh.params.quota_config().map(|q| QuotaState {
                count: q.count,
                window_ms: q.window.as_millis() as u64,
                margin_ms: q.margin.as_millis() as u64,
            }),
            concurrency: cur.concurrency,
            cuts: sh.params.cuts(),
            in_flight: sh.in_flight.load(Ordering::Relaxed),
            queue_depth: sh.queue_depth.load(Ordering::Relaxed),
            paused_ms: sh
                .pauses
                .remaining(reading)
                .map(|d| d.as_nanos().div_ceil(1_000_000) as u64),
            keys: match &self.keys {
                Keys::Global(_) => 1,
                Keys::Table(table) => table.live(),
            },
            learned: sh.learned.as_ref().map(LearnedView::state),
        }
    }

    fn update(&self, update: LimitUpdate) -> Result<LimitState, UpdateError> {
        self.shared.params.update(&update)?;
        // Buckets adopt the change at their next decision; queued heads must look again now
        // (a faster rate or a bigger cap lets them go sooner, a slower one may doom some).
        let now = Instant::now();
        for state in self.all_keys() {
            let mut inner = state.lock();
            if !inner.queue.is_empty() {
                inner.sweep_hopeless(&self.shared, now);
                inner.dispatch(&self.shared, now, None);
            }
        }
        Ok(self.state())
    }
}

// === impl Shared ===

impl Shared {
    fn inc_depth(&self) {
        self.queue_depth.fetch_add(1, Ordering::Relaxed);
    }

    fn dec_depth(&self) {
        self.queue_depth.fetch_sub(1, Ordering::Relaxed);
    }

    fn inc_in_flight(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    fn dec_in_flight(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    // Every refusal carries a hint: a 429 without Retry-After leaves a client to guess, and
    // when the wait is unknown (a slot or a probe's answer) or already over, the answer is
    // "try in a second" (the rescue layer rounds to whole seconds, at least 1).

    fn queue_full(&self, retry_after: Option<Duration>) -> Error {
        Error::QueueFull {
            limit: self.name.clone(),
            retry_after: Some(retry_after.unwrap_or(UNKNOWN_WAIT)),
        }
    }

    fn queue_timeout(&self, retry_after: Option<Duration>) -> Error {
        Error::QueueTimeout {
            limit: self.name.clone(),
            retry_after: Some(retry_after.unwrap_or(UNKNOWN_WAIT)),
        }
    }

    /// Reject mode's answer.
    fn rate_limited(&self, blocked: Blocked, now: Instant) -> Error {
        let retry_after = match blocked {
            Blocked::Paused(t) | Blocked::Rate(t) => Some(t.saturating_duration_since(now)),
            Blocked::Slot | Blocked::Probe => None,
        };
        Error::RateLimited {
            limit: self.name.clone(),
            retry_after: Some(retry_after.unwrap_or(UNKNOWN_WAIT)),
        }
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Queue => "queue",
        Mode::Reject => "reject",
        Mode::Observe => "observe",
    }
}

fn key_kind_name(kind: &KeyKind) -> String {
    match kind {
        KeyKind::Global => "global".into(),
        KeyKind::Token => "token".into(),
        KeyKind::ClientIp => "client_ip".into(),
        KeyKind::Header(name) => format!("header:{name}"),
    }
}
