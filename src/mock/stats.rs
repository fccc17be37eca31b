//! Counters behind `GET /__mock/stats`, so tests and rehearsals can see what reached the "API".
//!
//! Only API traffic (`/oauth/token`, `/api/v2/**` and unknown paths) is counted; the `/__mock`
//! helpers are not, so reading the stats does not change them.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use http::Method;
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::time::Instant;

/// Distinct `METHOD /path` entries kept; later ones are folded into `other`.
const MAX_ROUTES: usize = 1000;
/// Seconds of `per_second` history kept (the most recent ones).
const MAX_SECONDS: usize = 3600;

pub(crate) struct Stats {
    requests_total: AtomicU64,
    throttled_total: AtomicU64,
    tokens_issued: AtomicU64,
    in_flight: Arc<AtomicU64>,
    max_in_flight: Arc<AtomicU64>,
    /// Held only to bump a counter or take a snapshot.
    inner: Mutex<Inner>,
}

struct Inner {
    /// Zero of `per_second`: the mock's start or the last reset.
    start: Instant,
    /// By method, then raw path, so a lookup needs no allocation.
    routes: HashMap<Method, HashMap<Box<str>, Counts>>,
    route_entries: usize,
    other: Counts,
    seconds: VecDeque<Second>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    requests: u64,
    throttled: u64,
}

#[derive(Debug, Clone, Copy)]
struct Second {
    second: u64,
    counts: Counts,
}

/// Counts a request as in flight until dropped.
pub(crate) struct InFlight(Arc<AtomicU64>);

// === impl Stats ===

impl Stats {
    pub fn new(now: Instant) -> Stats {
        Stats {
            requests_total: AtomicU64::new(0),
            throttled_total: AtomicU64::new(0),
            tokens_issued: AtomicU64::new(0),
            in_flight: Arc::new(AtomicU64::new(0)),
            max_in_flight: Arc::new(AtomicU64::new(0)),
            inner: Mutex::new(Inner::new(now)),
        }
    }

    /// Marks a request as in flight; call before anything that may wait.
    pub fn begin(&self) -> InFlight {
        let now = self.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
        self.max_in_flight.fetch_max(now, Ordering::AcqRel);
        InFlight(self.in_flight.clone())
    }

    /// Counts one answered request under `METHOD path`.
    pub fn record(&self, method: &Method, path: &str, throttled: bool, now: Instant) {
        self.requests_total.fetch_add(1, Ordering::Relaxed);
        if throttled {
            self.throttled_total.fetch_add(1, Ordering::Relaxed);
        }
        let mut inner = self.inner.lock();
        inner.route(method, path).add(throttled);
        inner.second(now).add(throttled);
    }

    pub fn token_issued(&self) {
        self.tokens_issued.fetch_add(1, Ordering::Relaxed);
    }

    /// Zeroes every counter; requests still in flight stay counted there.
    pub fn reset(&self, now: Instant) {
        let mut inner = self.inner.lock();
        *inner = Inner::new(now);
        self.requests_total.store(0, Ordering::Relaxed);
        self.throttled_total.store(0, Ordering::Relaxed);
        self.tokens_issued.store(0, Ordering::Relaxed);
        let in_flight = self.in_flight.load(Ordering::Acquire);
        self.max_in_flight.store(in_flight, Ordering::Release);
    }

    /// The JSON of `GET /__mock/stats`.
    pub fn snapshot(&self) -> Value {
        let inner = self.inner.lock();
        let mut routes = serde_json::Map::new();
        for (method, paths) in &inner.routes {
            for (path, counts) in paths {
                routes.insert(format!("{method} {path}"), counts.to_json());
            }
        }
        if inner.other.requests > 0 {
            routes.insert("other".into(), inner.other.to_json());
        }
        let per_second: Vec<Value> = inner.seconds.iter().copied().map(Second::to_json).collect();
        drop(inner);
        json!({
            "requests_total": self.requests_total.load(Ordering::Relaxed),
            "throttled_total": self.throttled_total.load(Ordering::Relaxed),
            "routes": routes,
            "per_second": per_second,
            "max_in_flight": self.max_in_flight.load(Ordering::Acquire),
            "in_flight": self.in_flight.load(Ordering::Acquire),
            "tokens_issued": self.tokens_issued.load(Ordering::Relaxed),
        })
    }
}

// === impl Inner ===

impl Inner {
    fn new(start: Instant) -> Inner {
        Inner {
            start,
            routes: HashMap::new(),
            route_entries: 0,
            other: Counts::default(),
            seconds: VecDeque::new(),
        }
    }

    fn route(&mut self, method: &Method, path: &str) -> &mut Counts {
        let full = self.route_entries >= MAX_ROUTES;
        let known = self
            .routes
            .get(method)
            .is_some_and(|paths| paths.contains_key(path));
        if !known && full {
            return &mut self.other;
        }
        if !known {
            self.route_entries += 1;
        }
        let paths = self.routes.entry(method.clone()).or_default();
        match known {
            true => paths.get_mut(path).expect("checked above"),
            false => paths.entry(path.into()).or_default(),
        }
    }

    /// The bucket of the second `now` falls in; seconds nobody asked in are simply absent.
    fn second(&mut self, now: Instant) -> &mut Counts {
        let second = now.saturating_duration_since(self.start).as_secs();
        if self.seconds.back().is_none_or(|s| s.second != second) {
            if self.seconds.len() >= MAX_SECONDS {
                self.seconds.pop_front();
            }
            self.seconds.push_back(Second {
                second,
                counts: Counts::default(),
            });
        }
        &mut self.seconds.back_mut().expect("just pushed").counts
    }
}

// === impl Counts ===

impl Counts {
    fn add(&mut self, throttled: bool) {
        self.requests += 1;
        self.throttled += u64::from(throttled);
    }

    fn to_json(self) -> Value {
        json!({ "requests": self.requests, "throttled": self.throttled })
    }
}

impl Second {
    fn to_json(self) -> Value {
        json!({
            "second": self.second,
            "requests": self.counts.requests,
            "throttled": self.counts.throttled,
        })
    }
}

// === impl InFlight ===

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_fold_into_other_past_the_cap() {
        let now = Instant::now();
        let stats = Stats::new(now);
        for i in 0..MAX_ROUTES + 5 {
            stats.record(&Method::GET, &format!("/api/v2/x/{i}"), false, now);
        }
        stats.record(&Method::GET, "/api/v2/x/0", true, now);
        let snap = stats.snapshot();
        let routes = snap["routes"].as_object().unwrap();
        assert_eq!(routes.len(), MAX_ROUTES + 1);
        assert_eq!(routes["other"]["requests"], 5);
        assert_eq!(routes["GET /api/v2/x/0"]["throttled"], 1);
        assert_eq!(snap["requests_total"], MAX_ROUTES as u64 + 6);
    }
}
