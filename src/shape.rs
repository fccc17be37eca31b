//! Shaping: make the traffic that reaches the API fit its limits by delaying requests.
//!
//! A [`Limiter`] enforces one named limit (a quota or a token bucket, and/or a concurrency cap,
//! per key, with a bounded FIFO queue). The proxy only sees the trait, so the in-memory
//! [`LocalLimiter`] can be joined by a shared, Redis-backed one chosen per limit in the config
//! without touching the request path.
//!
//! - `key.rs`: what a request is counted by (global, hashed bearer token, client ip, header).
//! - `limits.rs`: the registry of a config's limiters, and which each route passes.
//! - `layer.rs`: the shaping layer of the request stack.
//! - `gauges.rs`: the limits' Prometheus gauges, read when Prometheus scrapes.
//! - `gcra.rs`: GCRA's arithmetic, shared by the local bucket and the Redis script's Rust copy.
//! - `local.rs` and `local/`: the in-memory limiter (GCRA token buckets, sliding-log quotas, FIFO
//!   queue, slots, pauses and their probes).
//! - `shared.rs` and `shared/`: limits shared by many instances through Redis (`shared: true`).

mod answers;

pub mod gauges;
mod gcra;
pub mod key;
pub mod layer;
pub mod limits;
mod local;
pub mod shared;

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

pub use self::key::LimitKey;
pub use self::local::{LearnedState, LocalLimiter};
use crate::error::Error;

/// Why a live change was refused; a refused change changes nothing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UpdateError {
    #[error("rate {0} lets nothing through; use at least 1 per period")]
    RateZero(crate::config::Rate),
    #[error("burst must be at least 1")]
    BurstZero,
    #[error("concurrency must be at least 1")]
    ConcurrencyZero,
    #[error("a quota must allow at least 1 request per window")]
    QuotaZero,
    #[error(
        "a shared limit without a concurrency cap cannot get one live (every instance would need \
         its lease set); add concurrency to the config"
    )]
    SharedCapAdded,
}

/// The future [`Limiter::acquire`] returns. Boxed so the trait stays object-safe: limiters are
/// chosen per limit at runtime.
pub type AcquireFuture<'a> = Pin<Box<dyn Future<Output = Result<Permit, Error>> + Send + 'a>>;

/// Queue position class. A retried request goes ahead of newer ones: it has already waited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Priority {
    #[default]
    Normal,
    Retry,
}

/// One request asking to pass a limit.
#[derive(Debug, Clone, Copy)]
pub struct Acquire {
    pub key: LimitKey,
    /// The request must be able to *start* by then; if it is known it cannot, fail early.
    pub deadline: Instant,
    pub priority: Priority,
}

/// Permission to send one request upstream. Dropping it releases the concurrency slot, if the
/// limit has one; hold it until the upstream response is finished.
pub struct Permit {
    /// How long the request waited in the queue.
    pub waited: Duration,
    guard: Option<Box<dyn Any + Send + Sync>>,
    probe: Option<Box<dyn Probe>>,
}

/// The one request a key lets go when a Retry-After pause ends, to learn whether the API accepts
/// again. Dropping it (the response is in, or the request failed without one) resumes the key;
/// a probe that drew a 429 is marked first, and the key then stays held until the pause that
/// 429 brings (see [`Limiter::on_throttled`]).
pub trait Probe: Send + Sync {
    /// The probe drew a 429: do not resume the key when dropped.
    fn throttled(&self);
}

impl Permit {
    pub fn new(waited: Duration, guard: Option<Box<dyn Any + Send + Sync>>) -> Permit {
        Permit {
            waited,
            guard,
            probe: None,
        }
    }

    /// Marks this permit as its key's probe after a pause.
    pub fn with_probe(mut self, probe: Box<dyn Probe>) -> Permit {
        self.probe = Some(probe);
        self
    }

    /// A permit that holds nothing (observe mode, or a limit without concurrency).
    pub fn free(waited: Duration) -> Permit {
        Permit::new(waited, None)
    }

    /// Whether this permit holds a concurrency slot.
    pub fn holds_slot(&self) -> bool {
        self.guard.is_some()
    }

    /// Whether this permit is its key's probe after a pause.
    pub fn is_probe(&self) -> bool {
        self.probe.is_some()
    }

    /// The request drew a 429 that will pause its key: a probe keeps the key held.
    pub fn throttled(&self) {
        if let Some(probe) = &self.probe {
            probe.throttled();
        }
    }
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit")
            .field("waited", &self.waited)
            .field("holds_slot", &self.holds_slot())
            .field("probe", &self.is_probe())
            .finish()
    }
}

/// A live change to a running limit (admin `PUT /limits/{name}`); absent fields stay as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct LimitUpdate {
    pub rate: Option<crate::config::Rate>,
    pub burst: Option<u32>,
    /// A new cap, or [`NO_CAP`] to remove the cap.
    pub concurrency: Option<u32>,
    pub quota: Option<crate::config::Quota>,
}

/// [`LimitUpdate::concurrency`] that removes a limit's concurrency cap (admin
/// `"concurrency": null`). A limiter that does not know it still lets everything through:
/// nothing has this many requests in flight.
pub const NO_CAP: u32 = u32::MAX;

/// A snapshot of a limit for `/status` and the metrics gauges.
#[derive(Debug, Clone, Serialize)]
pub struct LimitState {
    pub name: String,
    pub mode: &'static str,
    pub key: String,
    /// Configured requests per second (None without a rate).
    pub rate: Option<f64>,
    /// Effective requests per second after AIMD or a live change.
    pub effective_rate: Option<f64>,
    pub burst: u32,
    /// The quota as `N/window` with its margin in milliseconds (None without a quota).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaState>,
    pub concurrency: Option<u32>,
    /// How many times AIMD cut the rate (once per congestion event).
    pub cuts: u64,
    pub in_flight: usize,
    pub queue_depth: usize,
    /// Milliseconds until the longest current Retry-After pause ends, if any key is paused.
    pub paused_ms: Option<u64>,
    pub keys: usize,
    /// What the limit learned from the API's rate-limit headers (`learn:`), if it learns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub learned: Option<LearnedState>,
}

/// A quota in [`LimitState`].
#[derive(Debug, Clone, Serialize)]
pub struct QuotaState {
    pub count: u32,
    pub window_ms: u64,
    pub margin_ms: u64,
}

/// How a limit paces, for `pacer check`. A bucket releases up to rate × period + burst in one
/// window of its rate's period, more than a platform that counts N per window allows when the
/// rate is written as N per that window: say so next to the rate.
pub fn describe_pace(limit: &crate::config::Limit) -> String {
    match (limit.quota, limit.rate) {
        (Some(q), _) => format!(
            "quota {} per {:?} (margin {:?}; no window of {:?} holds more than {})",
            q.count, q.window, q.margin, q.window, q.count
        ),
        (None, Some(r)) => {
            let most = u64::from(r.count) + u64::from(limit.burst);
            format!(
                "rate {r} burst {} (at most {most} in one window of {:?}: rate x period + burst)",
                limit.burst, r.per
            )
        }
        (None, None) => "no rate".into(),
    }
}

/// How a limit with `learn:` learns, for `pacer check`: what it paces to, and what a configured
/// rate or quota becomes.
pub fn describe_learn(limit: &crate::config::Limit, learn: crate::config::Learn) -> String {
    let ceiling = match (limit.quota, limit.rate) {
        (Some(_), Some(_)) => "the quota and the rate stay ceilings",
        (Some(_), None) => "the quota stays a ceiling",
        (None, Some(_)) => "the rate stays a ceiling, and is the pace while the API says nothing",
        (None, None) => "no ceiling: what the API says is the limit",
    };
    // Rounded to a tenth of a percent: 0.07 x 100 is 7.000000000000001.
    let headroom = (learn.headroom * 1000.0).round() / 10.0;
    format!(
        "learns from the API's rate-limit headers (quota / window less {headroom}% headroom; \
         {ceiling}; one request per key until its first answer)"
    )
}

/// One named limit, enforced per key.
pub trait Limiter: Send + Sync + 'static {
    fn name(&self) -> &str;

    /// Waits until the request may go (or fails with a 429/503-class [`Error`]). Must be
    /// cancellation-safe: dropping the future leaves the queue at once and frees its place.
    fn acquire(&self, req: Acquire) -> AcquireFuture<'_>;

    /// The upstream answered 429 for a request that passed this limit with `key`: pause the
    /// whole key for `retry_after` (no request of that key is released meanwhile) and, when
    /// adaptive, cut the effective rate.
    fn on_throttled(&self, key: LimitKey, retry_after: Duration);

    /// Whether the limit learns from the API's rate-limit headers: then the shaping layer calls
    /// [`Limiter::on_advertised`] once for every request the limit released.
    fn learns(&self) -> bool {
        false
    }

    /// The upstream answered a request that passed this limit with `key`: `advertised` is what
    /// its rate-limit headers said (None when they said nothing, or the request failed).
    fn on_advertised(&self, _key: LimitKey, _advertised: Option<&crate::ratelimit::Advertised>) {}

    /// When the key's current pause ends, if it is paused.
    fn paused_until(&self, key: LimitKey) -> Option<Instant>;

    fn state(&self) -> LimitState;

    /// Applies a live change for all keys at once.
    fn update(&self, update: LimitUpdate) -> Result<LimitState, UpdateError>;

    /// For a limit shared through Redis: its shared mode, for `/status`. None for local limits.
    fn shared(&self) -> Option<shared::SharedState> {
        None
    }
}
