//! Shaping's own Prometheus series: the gauges that describe each limit's live state, and the
//! series of limits shared through Redis. [`Limits::register_metrics`] adds them to a registry.
//!
//! Queue depth, slots in use, the effective rate and pauses change on every request. Keeping
//! gauges current on the request path would cost atomics nobody reads between scrapes, so they
//! are read from [`Limiter::state`] when Prometheus asks (a collector, built afresh per scrape),
//! which also makes them agree with `/status` exactly.

use std::sync::{Arc, Weak};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry};

use super::limits::Limits;
use super::{LearnedState, LimitState, Limiter};

/// Every value `pacer_shared_mode`'s `mode` label takes, each exported (1 for the current one).
pub const MODES: [&str; 4] = ["shared", "local_fallback", "reject", "allow"];

const QUEUE_DEPTH: (&str, &str) = ("pacer_queue_depth", "Requests waiting in a limit's queues.");
const INFLIGHT: (&str, &str) = (
    "pacer_inflight",
    "Concurrency slots of a limit in use: requests in flight upstream.",
);
const PAUSED: (&str, &str) = (
    "pacer_limit_paused",
    "1 while a Retry-After pause holds at least one key of the limit.",
);
const KEYS: (&str, &str) = ("pacer_limit_keys", "Keys a limit currently tracks.");
/// Exported only for limits that have a rate: no series rather than a made-up value.
const RATE: (&str, &str) = (
    "pacer_limit_rate",
    "A limit's effective rate in requests per second, after AIMD or a live change.",
);
/// What limits with `learn:` learned from the API's rate-limit headers; a value not learned yet
/// has no series.
const LEARNED: [(&str, &str); 4] = [
    (
        "pacer_learned_quota",
        "Requests per window the API advertises for a learning limit's keys.",
    ),
    (
        "pacer_learned_window_seconds",
        "The window the API advertises (or the longest reset lately seen), in seconds.",
    ),
    (
        "pacer_learned_remaining",
        "The latest remaining the API advertised for a key of the limit.",
    ),
    (
        "pacer_learned_rate",
        "The learned pace in requests per second: quota / window less the headroom.",
    ),
];
const MODE: (&str, &str) = (
    "pacer_shared_mode",
    "1 for the mode a shared limit is in: shared, or while Redis is unavailable local_fallback, reject or allow.",
);
const UNSHAPED: (&str, &str) = (
    "pacer_shared_unshaped_total",
    "Requests a shared limit let through unshaped while Redis was unavailable (on_unavailable: allow).",
);

impl Limits {
    /// Registers the limits' gauges in `registry`, and when a limit is shared, the Redis
    /// client's call latency and errors (kept by the store) and the shared limits' modes.
    pub fn register_metrics(self: &Arc<Self>, registry: &Registry) {
        let shared = self.store().map(|store| {
            let stats = store.stats();
            register(registry, stats.latency.clone());
            register(registry, stats.errors.clone());
        });
        register(
            registry,
            LimitGauges::new(Arc::downgrade(self), shared.is_some()),
        );
    }
}

/// Reads the limits' state when Prometheus scrapes.
struct LimitGauges {
    limits: Weak<Limits>,
    /// Whether the shared limits' series are exported too.
    shared: bool,
    descs: Vec<Desc>,
}

impl LimitGauges {
    fn new(limits: Weak<Limits>, shared: bool) -> LimitGauges {
        let desc = |(name, help): (&str, &str), labels: &[&str]| {
            let labels = labels.iter().map(|l| l.to_string()).collect();
            Desc::new(name.into(), help.into(), labels, Default::default()).expect("valid desc")
        };
        let mut descs: Vec<Desc> = [QUEUE_DEPTH, INFLIGHT, PAUSED, KEYS, RATE]
            .into_iter()
            .chain(LEARNED)
            .map(|d| desc(d, &["limit"]))
            .collect();
        if shared {
            descs.push(desc(MODE, &["limit", "mode"]));
            descs.push(desc(UNSHAPED, &["limit"]));
        }
        LimitGauges {
            limits,
            shared,
            descs,
        }
    }
}

impl Collector for LimitGauges {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let Some(limits) = self.limits.upgrade() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let [queue_depth, inflight, paused, keys] =
            [QUEUE_DEPTH, INFLIGHT, PAUSED, KEYS].map(|(n, h)| int_gauges(n, h, &["limit"]));
        let rate = GaugeVec::new(Opts::new(RATE.0, RATE.1), &["limit"]).expect("valid metric");
        let learned =
            LEARNED.map(|(n, h)| GaugeVec::new(Opts::new(n, h), &["limit"]).expect("valid"));
        for limiter in limits.limiters() {
            let s: LimitState = limiter.state();
            if let Some(l) = &s.learned {
                set_learned(&learned, limiter.name(), l);
            }
            let name = [limiter.name()];
            queue_depth
                .with_label_values(&name)
                .set(clamp(s.queue_depth));
            inflight.with_label_values(&name).set(clamp(s.in_flight));
            keys.with_label_values(&name).set(clamp(s.keys));
            let is_paused = s.paused_ms.is_some_and(|ms| ms > 0);
            paused.with_label_values(&name).set(i64::from(is_paused));
            if let Some(r) = s.effective_rate {
                rate.with_label_values(&name).set(r);
            }
        }
        for g in [queue_depth, inflight, paused, keys] {
            out.extend(g.collect());
        }
        out.extend(rate.collect());
        out.extend(learned.iter().flat_map(|f| f.collect()));
        if self.shared {
            out.extend(shared_modes(limits.limiters()));
        }
        out
    }
}

/// Sets the `pacer_learned_*` gauges of one limit; a value not learned yet has no series.
fn set_learned(families: &[GaugeVec; 4], name: &str, l: &LearnedState) {
    let values = [
        l.quota.map(f64::from),
        l.window_ms.map(|ms| ms as f64 / 1000.0),
        l.remaining.map(f64::from),
        l.rate,
    ];
    for (family, value) in families.iter().zip(values) {
        if let Some(v) = value {
            family.with_label_values(&[name]).set(v);
        }
    }
}

/// `pacer_shared_mode` and `pacer_shared_unshaped_total` of the shared limits.
fn shared_modes(limiters: &[Arc<dyn Limiter>]) -> Vec<MetricFamily> {
    let mode = int_gauges(MODE.0, MODE.1, &["limit", "mode"]);
    let unshaped =
        IntCounterVec::new(Opts::new(UNSHAPED.0, UNSHAPED.1), &["limit"]).expect("valid metric");
    for limiter in limiters {
        let Some(state) = limiter.shared() else {
            continue;
        };
        let name = limiter.name();
        for m in MODES {
            let on = i64::from(state.mode == m);
            mode.with_label_values(&[name, m]).set(on);
        }
        unshaped.with_label_values(&[name]).inc_by(state.unshaped);
    }
    let mut out = mode.collect();
    out.extend(unshaped.collect());
    out
}

fn int_gauges(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric")
}

fn clamp(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Registration fails only for a duplicate or malformed name: a bug in this file.
fn register(registry: &Registry, c: impl Collector + 'static) {
    registry
        .register(Box::new(c))
        .expect("metric names are unique");
}
