//! Limits shared by every pacer with the same `shared:` Redis, key prefix and secret.
//!
//! - `gcra.rs` and `gcra.lua`: the rate as GCRA *reservations* on Redis's clock: one script
//!   call moves the key's theoretical arrival time forward and answers when this request may
//!   go; the instance then waits locally. Reservations are made in arrival order at Redis, so
//!   the queue is FIFO across instances, and instance clocks never matter.
//! - `lease.rs`: concurrency caps as leases in a sorted set, renewed while a request runs.
//! - `live.rs`: reading back live changes and AIMD cuts made by other instances.
//! - `client.rs`: the Redis connection, the per-call timeout and the health check.
//! - `fallback.rs`: `on_unavailable` (local at `1/instances`, reject, allow).
//! - `stats.rs`: call latency and errors, registered by `gauges.rs` with the limits' gauges.
//!
//! - `quota.rs` and `quota.lua`: window quotas as reservations in a sorted-set log of release
//!   times beside the bucket, on Redis's clock, reading the same `params` hash and honouring
//!   the bucket's `pause` field, so live changes and shared Retry-After pauses apply alike.
//!
//! A cancelled wait (the client went away, or an earlier limit of the route failed) gives its
//! reservation back when it is still the key's last one (the common case: nobody queued
//! behind it); otherwise the interval it held stays used, which costs throughput, never
//! exceeds the limit.

mod client;
mod fallback;
pub mod gcra;
mod lease;
mod live;
mod quota;
pub mod stats;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

pub use self::client::{Health, Store};
use self::gcra::{Aimd, Op, Params, Reply};
use self::lease::Leases;
pub use self::lease::LEASE;
use super::{
    Acquire, AcquireFuture, LimitKey, LimitState, LimitUpdate, Limiter, Permit, QuotaState,
    UpdateError,
};
use crate::config::{Limit, Mode, Quota, Rate};
use crate::error::Error;

/// A limit enforced through Redis for every instance that shares it.
pub struct SharedLimiter {
    config: Limit,
    store: Arc<Store>,
    /// `on_unavailable: local`'s limiter, at `1/instances` of the limit.
    fallback: super::LocalLimiter,
    /// The emission interval (µs) and burst in force, as last seen in Redis or set here.
    interval: AtomicU64,
    burst: AtomicU32,
    /// The quota in force, as last seen in Redis or set here.
    quota: Mutex<Option<Quota>>,
    leases: Option<Leases>,
    queue_depth: Arc<AtomicUsize>,
    /// Pauses this instance knows of, for [`Limiter::paused_until`] (which cannot ask Redis).
    pauses: Mutex<HashMap<LimitKey, Instant>>,
    /// Requests let through unshaped under `on_unavailable: allow`.
    unshaped: AtomicU64,
    /// When this instance's last reservation in Redis goes (see `fallback.rs`).
    reserved_until: Mutex<Option<Instant>>,
}

/// What `/status` adds for a shared limit.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SharedState {
    /// `shared`, or while Redis is unavailable: `local_fallback`, `reject` or `allow`.
    pub mode: &'static str,
    pub key_prefix: String,
    /// Requests let through unshaped under `on_unavailable: allow`, since start.
    pub unshaped: u64,
}

// === impl SharedLimiter ===

impl SharedLimiter {
    pub fn new(config: Limit, store: Arc<Store>) -> Arc<SharedLimiter> {
        let instances = store.config.instances;
        let limiter = Arc::new(SharedLimiter {
            fallback: super::LocalLimiter::new(fallback::share(&config, instances)),
            interval: AtomicU64::new(config.rate.map_or(0, interval_us)),
            burst: AtomicU32::new(config.burst.max(1)),
            quota: Mutex::new(config.quota),
            leases: config
                .concurrency
                .map(|cap| Leases::new(store.clone(), &config.name, cap)),
            queue_depth: Arc::new(AtomicUsize::new(0)),
            pauses: Mutex::new(HashMap::new()),
            unshaped: AtomicU64::new(0),
            reserved_until: Mutex::new(None),
            store,
            config,
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(live::refresh(Arc::downgrade(&limiter)));
        }
        limiter
    }

    /// Waits for the key's rate (a reservation in Redis), then for a lease when capped.
    async fn admit(&self, req: Acquire, start: Instant) -> Result<Permit, Error> {
        let deadline = start
            .checked_add(self.config.queue.max_wait)
            .map_or(req.deadline, |cap| cap.min(req.deadline));
        if self.config.rate.is_some() || self.config.quota.is_some() {
            let Some(reply) = self.reserve(req.key, start, deadline).await? else {
                return self.unavailable(req).await;
            };
            self.wait(req.key, reply).await;
        }
        let Some(leases) = &self.leases else {
            return Ok(Permit::free(start.elapsed()));
        };
        let queued = (self.config.mode == Mode::Queue).then_some(deadline);
        match leases.acquire(req.key, queued, &self.queue_depth).await {
            Ok(Some(lease)) => Ok(Permit::new(start.elapsed(), Some(Box::new(lease)))),
            Ok(None) => Err(self.refused(None)),
            Err(_) => self.unavailable(req).await,
        }
    }

    /// One reservation; Ok(None) when Redis did not answer.
    async fn reserve(
        &self,
        key: LimitKey,
        start: Instant,
        deadline: Instant,
    ) -> Result<Option<Reply>, Error> {
        if self.queue_depth.load(Ordering::Relaxed) >= self.config.queue.max_depth {
            return Err(Error::QueueFull {
                limit: self.config.name.clone(),
                retry_after: None,
            });
        }
        let max_wait = match self.config.mode {
            Mode::Queue => micros(deadline.saturating_duration_since(start)),
            _ => 0,
        };
        let op = Op::Reserve { max_wait };
        let Ok(reply) = self.script(key, op).await else {
            return Ok(None);
        };
        if !reply.granted {
            return Err(self.refused(Some(Duration::from_micros(reply.wait))));
        }
        Ok(Some(reply))
    }

    /// Sleeps until the reserved instant; a cancelled sleep gives the reservation back.
    async fn wait(&self, key: LimitKey, reply: Reply) {
        if reply.wait == 0 {
            return;
        }
        let mut held = Reserved {
            limiter: self,
            key,
            tat: reply.tat,
            armed: true,
        };
        self.queue_depth.fetch_add(1, Ordering::Relaxed);
        let until = Instant::now() + Duration::from_micros(reply.wait);
        self.note_reserved(until);
        tokio::time::sleep_until(until).await;
        held.armed = false;
    }

    /// What this instance asks with: the configured rate (a live change in Redis overrides it)
    /// and AIMD settings.
    fn params(&self) -> Params {
        Params {
            interval: self.config.rate.map_or(0, interval_us),
            burst: u64::from(self.config.burst.max(1)),
            aimd: self.config.adaptive.map(|a| Aimd {
                factor: a.factor,
                floor: a.floor.clamp(0.0, 1.0),
                step: a.step,
                every: micros(a.interval).max(1),
            }),
        }
    }

    /// A call of this limit's script (quota or GCRA); notes any pause it reports.
    async fn script(&self, key: LimitKey, op: Op) -> Result<Reply, client::Unavailable> {
        let reply = self.call(key, op).await?;
        if self.config.rate.is_some() {
            self.interval.store(reply.interval, Ordering::Relaxed);
        }
        if reply.paused_for > 0 {
            let until = Instant::now() + Duration::from_micros(reply.paused_for);
            self.note_pause(key, until);
        }
        Ok(reply)
    }

    /// The script call for `op`, owning what it needs (so it can run after `self` is gone).
    fn call(
        &self,
        key: LimitKey,
        op: Op,
    ) -> impl std::future::Future<Output = Result<Reply, client::Unavailable>> + Send + 'static
    {
        let (store, name, params) = (self.store.clone(), self.config.name.clone(), self.params());
        let quota = self.config.quota;
        async move {
            match quota {
                Some(q) => store.quota(&name, key.0, q, op).await,
                None => store.gcra(&name, key.0, params, op).await,
            }
        }
    }

    fn refused(&self, retry_after: Option<Duration>) -> Error {
        let limit = self.config.name.clone();
        match self.config.mode {
            Mode::Queue => Error::QueueTimeout { limit, retry_after },
            _ => Error::RateLimited { limit, retry_after },
        }
    }

    fn note_pause(&self, key: LimitKey, until: Instant) {
        let mut pauses = self.pauses.lock();
        // Bounded like the local limiter's key table: forget ended pauses first.
        if pauses.len() >= self.config.max_keys {
            let now = Instant::now();
            pauses.retain(|_, t| *t > now);
        }
        if pauses.len() < self.config.max_keys || pauses.contains_key(&key) {
            let entry = pauses.entry(key).or_insert(until);
            *entry = (*entry).max(until);
        }
    }

    /// This limit's state in Redis terms, for `/status`.
    pub fn shared_state(&self) -> SharedState {
        SharedState {
            mode: fallback::mode_name(self.store.health(), self.store.config.on_unavailable),
            key_prefix: self.store.config.key_prefix.clone(),
            unshaped: self.unshaped.load(Ordering::Relaxed),
        }
    }
}

impl Limiter for SharedLimiter {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn acquire(&self, req: Acquire) -> AcquireFuture<'_> {
        if self.config.mode == Mode::Observe {
            return Box::pin(std::future::ready(Ok(Permit::free(Duration::ZERO))));
        }
        let start = Instant::now();
        if self.store.health() == Health::Down {
            return Box::pin(self.unavailable(req));
        }
        Box::pin(self.admit(req, start))
    }

    fn on_throttled(&self, key: LimitKey, retry_after: Duration) {
        let now = Instant::now();
        self.note_pause(key, now + retry_after);
        // The fallback pauses too, in case Redis goes away before the pause ends.
        self.fallback.on_throttled(key, retry_after);
        if self.config.mode == Mode::Observe {
            return;
        }
        let call = self.call(
            key,
            Op::Pause {
                retry_after: micros(retry_after),
            },
        );
        spawn(async move {
            let _ = call.await;
        });
    }

    fn paused_until(&self, key: LimitKey) -> Option<Instant> {
        let until = *self.pauses.lock().get(&key)?;
        (until > Instant::now()).then_some(until)
    }

    fn state(&self) -> LimitState {
        let mut state = self.fallback.state();
        let interval = self.interval.load(Ordering::Relaxed);
        state.rate = self.config.rate.map(|r| r.per_second());
        state.effective_rate = (interval > 0).then(|| 1e6 / interval as f64);
        state.burst = self.burst.load(Ordering::Relaxed);
        state.concurrency = self.leases.as_ref().map(Leases::cap);
        state.quota = self.quota().map(|q| QuotaState {
            count: q.count,
            window_ms: q.window.as_millis() as u64,
            margin_ms: q.margin.as_millis() as u64,
        });
        let local = self.leases.as_ref().map_or(0, Leases::held);
        state.in_flight += local;
        state.queue_depth += self.queue_depth.load(Ordering::Relaxed);
        let now = Instant::now();
        let pauses = self.pauses.lock();
        state.keys = state.keys.max(pauses.len());
        let longest = pauses.values().filter(|t| **t > now).max();
        state.paused_ms = longest.map(|t| (*t - now).as_millis() as u64);
        state
    }

    fn update(&self, update: LimitUpdate) -> Result<LimitState, UpdateError> {
        let adds_cap = update.concurrency.is_some_and(|c| c != super::NO_CAP);
        if adds_cap && self.leases.is_none() {
            return Err(UpdateError::SharedCapAdded);
        }
        let instances = self.store.config.instances;
        self.fallback
            .update(fallback::share_update(&update, instances))?;
        if let Some(rate) = update.rate {
            self.interval.store(interval_us(rate), Ordering::Relaxed);
        }
        if let Some(burst) = update.burst {
            self.burst.store(burst, Ordering::Relaxed);
        }
        if let (Some(leases), Some(cap)) = (&self.leases, update.concurrency) {
            leases.set_cap(cap);
        }
        if let Some(q) = update.quota {
            self.set_quota(Some(q));
        }
        // Only what the change names: the rest (and an AIMD cut) stays as Redis has it.
        let quota = update.quota.map(quota::live_fields).into_iter().flatten();
        let fields: Vec<(&'static str, u64)> = [
            ("interval", update.rate.map(interval_us)),
            ("burst", update.burst.map(u64::from)),
            ("concurrency", update.concurrency.map(u64::from)),
        ]
        .into_iter()
        .filter_map(|(f, v)| Some((f, v?)))
        .chain(quota)
        .collect();
        if fields.is_empty() {
            return Ok(self.state());
        }
        let mut hset = redis::cmd("HSET");
        hset.arg(self.store.params_key(&self.config.name))
            .arg(&fields);
        let store = self.store.clone();
        spawn(async move {
            let _ = store.command::<()>(hset).await;
        });
        Ok(self.state())
    }

    fn shared(&self) -> Option<SharedState> {
        Some(self.shared_state())
    }
}

/// A reservation being waited for; dropped while armed, it is given back.
struct Reserved<'a> {
    limiter: &'a SharedLimiter,
    key: LimitKey,
    tat: u64,
    armed: bool,
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        let l = self.limiter;
        l.queue_depth.fetch_sub(1, Ordering::Relaxed);
        if !self.armed {
            return;
        }
        let call = l.call(self.key, Op::Release { tat: self.tat });
        spawn(async move {
            let _ = call.await;
        });
    }
}

/// Runs a Redis call that nobody waits for, when there is a runtime to run it on.
fn spawn(fut: impl std::future::Future<Output = ()> + Send + 'static) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(fut);
    }
}

fn interval_us(rate: Rate) -> u64 {
    micros(rate.interval()).max(1)
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
