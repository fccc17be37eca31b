//! The platform's limits as the mock enforces them: fixed windows per token, and concurrency caps
//! per route.
//!
//! A window starts at its key's first request and lasts `window`; the first request after it
//! ends opens the next one. This is the simplest model that answers the question load tests ask
//! ("how many requests per window does a token get?") and makes `Retry-After` exact: the time
//! until the window that refused the request ends. Refused requests do not count against a window.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use super::config::{MockConfig, WindowLimit};

/// Keys remembered per window slot. Past it, expired windows are dropped, and if the slot is still
/// full new tokens share one overflow window, so a flood of tokens cannot exhaust memory.
const MAX_KEYS: usize = 100_000;
const OVERFLOW_KEY: &str = "\0overflow";

/// Every limit of one mock, shared by all connections.
pub(crate) struct Limits {
    default: Option<WindowLimit>,
    /// Per route: its rate (per token) and in-flight counter (across tokens).
    routes: Vec<RouteLimit>,
    /// Slot 0 holds the default limit's windows, slot `1 + i` those of route `i`. One lock, held
    /// only to read and bump counters, never across an await.
    windows: Mutex<Vec<HashMap<Box<str>, Window>>>,
}

struct RouteLimit {
    rate: Option<WindowLimit>,
    concurrency: Option<u32>,
    in_flight: Arc<AtomicU32>,
}

#[derive(Clone, Copy)]
struct Window {
    start: Instant,
    count: u32,
}

/// Where a key stands in the default window, for the `inin-ratelimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateStatus {
    pub count: u32,
    pub allowed: u32,
    /// Whole seconds until the window resets.
    pub reset_secs: u64,
    /// The window's length in whole seconds, for the headers that say it.
    pub window_secs: u64,
}

/// A request the limits let through.
pub(crate) struct Admitted {
    pub status: Option<RateStatus>,
    /// Held while the request is served; frees the route's concurrency slot on drop.
    pub _permit: Option<Permit>,
}

/// A request the limits refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Throttled {
    /// Whole seconds until the refusing limit frees, at least 1.
    pub retry_after: u64,
    pub status: Option<RateStatus>,
}

/// One of a route's concurrency slots.
pub(crate) struct Permit(Arc<AtomicU32>);

// === impl Limits ===

impl Limits {
    pub fn new(config: &MockConfig) -> Limits {
        let routes = config
            .routes
            .iter()
            .map(|r| RouteLimit {
                rate: r.rate,
                concurrency: r.concurrency,
                in_flight: Arc::new(AtomicU32::new(0)),
            })
            .collect::<Vec<_>>();
        let slots = (0..=routes.len()).map(|_| HashMap::new()).collect();
        Limits {
            default: config.default_limit,
            routes,
            windows: Mutex::new(slots),
        }
    }

    /// Admits or refuses one request of `route` (an index into the config's routes) by `key`.
    pub fn check(
        &self,
        route: Option<usize>,
        key: &str,
        now: Instant,
    ) -> Result<Admitted, Throttled> {
        let route = route.map(|i| (i, &self.routes[i]));
        // Concurrency first: it is undone by dropping the permit if a window refuses.
        let permit = match route {
            Some((_, r)) => r.acquire()?,
            None => None,
        };
        let default = self.default.map(|l| (0, l));
        let routed = route.and_then(|(i, r)| r.rate.map(|l| (1 + i, l)));
        if default.is_none() && routed.is_none() {
            return Ok(Admitted {
                status: None,
                _permit: permit,
            });
        }
        let mut windows = self.windows.lock();
        let refused = count(&mut windows, [default, routed], key, now).err();
        let status = default.map(|(_, l)| status_of(&windows[0], key, &l, now));
        drop(windows);
        match refused {
            Some(wait) => Err(Throttled {
                retry_after: whole_secs(wait).max(1),
                status,
            }),
            None => Ok(Admitted {
                status,
                _permit: permit,
            }),
        }
    }

    /// Forgets every window (in-flight counts stay: those requests are real).
    pub fn reset(&self) {
        let mut windows = self.windows.lock();
        windows.iter_mut().for_each(HashMap::clear);
    }
}

/// Counts the request in each applicable window (`(slot, limit)` pairs), or, when any of them is
/// full, in none: then Err with the longest wait among the full ones.
fn count(
    windows: &mut [HashMap<Box<str>, Window>],
    limits: [Option<(usize, WindowLimit)>; 2],
    key: &str,
    now: Instant,
) -> Result<(), Duration> {
    let mut refused: Option<Duration> = None;
    for (slot, limit) in limits.iter().flatten() {
        let w = window_for(&mut windows[*slot], key, limit, now);
        if w.count >= limit.requests {
            let wait = (w.start + limit.window).saturating_duration_since(now);
            refused = Some(refused.map_or(wait, |r| r.max(wait)));
        }
    }
    if let Some(wait) = refused {
        return Err(wait);
    }
    for (slot, _) in limits.iter().flatten() {
        let slot = &mut windows[*slot];
        if let Some(w) = slot.get_mut(key_in(slot, key)) {
            w.count += 1;
        }
    }
    Ok(())
}

/// The key's current window in `slot`, opening a new one when there is none or it has ended.
fn window_for<'a>(
    slot: &'a mut HashMap<Box<str>, Window>,
    key: &str,
    limit: &WindowLimit,
    now: Instant,
) -> &'a mut Window {
    let fresh = Window {
        start: now,
        count: 0,
    };
    let mut key = key;
    if !slot.contains_key(key) {
        if slot.len() >= MAX_KEYS {
            slot.retain(|_, w| now < w.start + limit.window);
        }
        if slot.len() >= MAX_KEYS {
            key = OVERFLOW_KEY;
        }
        // Allocates only for a key's first request (or its first after a purge).
        slot.entry(key.into()).or_insert(fresh);
    }
    let w = slot.get_mut(key).expect("inserted above");
    if now >= w.start + limit.window {
        *w = fresh;
    }
    w
}

/// The key a request was counted under in `slot`: its own, or the overflow key.
fn key_in<'a>(slot: &HashMap<Box<str>, Window>, key: &'a str) -> &'a str {
    match slot.contains_key(key) {
        true => key,
        false => OVERFLOW_KEY,
    }
}

fn status_of(
    slot: &HashMap<Box<str>, Window>,
    key: &str,
    limit: &WindowLimit,
    now: Instant,
) -> RateStatus {
    let w = slot.get(key_in(slot, key)).copied();
    let (count, start) = w.map_or((0, now), |w| (w.count, w.start));
    RateStatus {
        count,
        allowed: limit.requests,
        reset_secs: whole_secs((start + limit.window).saturating_duration_since(now)),
        window_secs: whole_secs(limit.window),
    }
}

/// Rounds up, so a client waiting this long finds the window free.
pub(crate) fn whole_secs(d: Duration) -> u64 {
    d.as_nanos().div_ceil(1_000_000_000) as u64
}

// === impl RouteLimit ===

impl RouteLimit {
    /// Takes a concurrency slot, or refuses with Retry-After 1 (a slot may free any moment).
    fn acquire(&self) -> Result<Option<Permit>, Throttled> {
        let Some(cap) = self.concurrency else {
            return Ok(None);
        };
        let before = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let permit = Permit(self.in_flight.clone());
        match before < cap {
            true => Ok(Some(permit)),
            false => Err(Throttled {
                retry_after: 1,
                status: None,
            }),
        }
    }
}

// === impl Permit ===

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(requests: u32, secs: u64) -> Limits {
        let config = MockConfig {
            default_limit: Some(WindowLimit {
                requests,
                window: Duration::from_secs(secs),
            }),
            ..MockConfig::default()
        };
        Limits::new(&config)
    }

    #[test]
    fn window_refuses_then_reopens() {
        let l = limits(2, 60);
        let t0 = Instant::now();
        assert!(l.check(None, "a", t0).is_ok());
        let second = l
            .check(None, "a", t0 + Duration::from_secs(1))
            .ok()
            .unwrap();
        assert_eq!(second.status.unwrap().count, 2);
        let refused = l
            .check(None, "a", t0 + Duration::from_millis(30_500))
            .err()
            .unwrap();
        assert_eq!(refused.retry_after, 30);
        assert!(
            l.check(None, "b", t0).is_ok(),
            "another key has its own window"
        );
        assert!(l.check(None, "a", t0 + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn retry_after_is_at_least_one() {
        let l = limits(1, 1);
        let t0 = Instant::now();
        assert!(l.check(None, "a", t0).is_ok());
        let refused = l
            .check(None, "a", t0 + Duration::from_millis(999))
            .err()
            .unwrap();
        assert_eq!(refused.retry_after, 1);
    }

    #[test]
    fn a_refusal_counts_in_no_window_and_frees_its_slot() {
        let route = super::super::config::MockRoute {
            pattern: "GET /x".into(),
            method: None,
            path: crate::route::PathPattern::parse("/x").unwrap(),
            rate: Some(WindowLimit {
                requests: 1,
                window: Duration::from_secs(10),
            }),
            concurrency: Some(1),
            latency: None,
        };
        let mut config = MockConfig {
            default_limit: Some(WindowLimit {
                requests: 3,
                window: Duration::from_secs(60),
            }),
            ..MockConfig::default()
        };
        config.routes.push(route);
        let l = Limits::new(&config);
        let t0 = Instant::now();
        let first = l.check(Some(0), "a", t0).ok().unwrap();
        assert_eq!(
            l.check(Some(0), "a", t0).err().unwrap().retry_after,
            1,
            "slot taken"
        );
        drop(first);
        let refused = l.check(Some(0), "a", t0).err().unwrap();
        assert_eq!(refused.retry_after, 10, "the route's window is full");
        assert_eq!(refused.status.unwrap().count, 1, "refusals are not counted");
        assert_eq!(l.routes[0].in_flight.load(Ordering::Acquire), 0);
    }
}
