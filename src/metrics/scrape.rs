//! Scrape time: the gauges that describe each limit's live state, and the text exposition.
//!
//! Queue depth, slots in use, the effective rate and pauses change on every request. Keeping
//! gauges current on the request path would cost atomics nobody reads between scrapes, so they
//! are read from [`Limiter::state`] when Prometheus asks, which also makes them agree with
//! `/status` exactly.

use std::sync::Mutex;

use prometheus::{Encoder, GaugeVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

use super::{register, Metrics};
use crate::config::Config;
use crate::shape::layer::Limits;
use crate::shape::{LimitState, Limiter};

/// The Content-Type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

pub(super) struct Gauges {
    /// Indexed by limit index.
    limits: Vec<LimitGauges>,
    /// Kept as a family: a limit without a rate has no series rather than a made-up value.
    rate: GaugeVec,
    learned: super::learned::LearnedGauges,
    /// Fill-then-gather must not interleave between two concurrent scrapes.
    scrape: Mutex<()>,
}

struct LimitGauges {
    name: String,
    queue_depth: IntGauge,
    inflight: IntGauge,
    paused: IntGauge,
    keys: IntGauge,
}

// === impl Gauges ===

impl Gauges {
    pub(super) fn register(registry: &Registry, config: &Config) -> Gauges {
        let queue_depth = gauge(
            registry,
            "pacer_queue_depth",
            "Requests waiting in a limit's queues.",
        );
        let inflight = gauge(
            registry,
            "pacer_inflight",
            "Concurrency slots of a limit in use: requests in flight upstream.",
        );
        let paused = gauge(
            registry,
            "pacer_limit_paused",
            "1 while a Retry-After pause holds at least one key of the limit.",
        );
        let keys = gauge(
            registry,
            "pacer_limit_keys",
            "Keys a limit currently tracks.",
        );
        let rate = GaugeVec::new(
            Opts::new(
                "pacer_limit_rate",
                "A limit's effective rate in requests per second, after AIMD or a live change.",
            ),
            &["limit"],
        )
        .expect("a valid metric definition");
        register(registry, rate.clone());
        let build = IntGaugeVec::new(
            Opts::new(
                "pacer_build_info",
                "Always 1; the labels say which pacer runs.",
            ),
            &["version"],
        )
        .expect("a valid metric definition");
        register(registry, build.clone());
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let limits = config
            .limits
            .iter()
            .map(|l| LimitGauges {
                name: l.name.clone(),
                queue_depth: queue_depth.with_label_values(&[&l.name]),
                inflight: inflight.with_label_values(&[&l.name]),
                paused: paused.with_label_values(&[&l.name]),
                keys: keys.with_label_values(&[&l.name]),
            })
            .collect();
        Gauges {
            limits,
            rate,
            learned: super::learned::LearnedGauges::register(registry),
            scrape: Mutex::new(()),
        }
    }

    fn fill(&self, limiters: &[std::sync::Arc<dyn Limiter>]) {
        for (g, limiter) in self.limits.iter().zip(limiters) {
            let state = limiter.state();
            g.set(&self.rate, &state);
            self.learned.set(&g.name, &state);
        }
    }
}

// === impl LimitGauges ===

impl LimitGauges {
    fn set(&self, rate: &GaugeVec, s: &LimitState) {
        self.queue_depth.set(clamp(s.queue_depth));
        self.inflight.set(clamp(s.in_flight));
        self.keys.set(clamp(s.keys));
        self.paused
            .set(i64::from(s.paused_ms.is_some_and(|ms| ms > 0)));
        match s.effective_rate {
            Some(r) => rate.with_label_values(&[&self.name]).set(r),
            None => {
                let _ = rate.remove_label_values(&[&self.name]);
            }
        }
    }
}

fn clamp(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), &["limit"]).expect("a valid metric definition");
    register(registry, g.clone());
    g
}

// === impl Metrics ===

impl Metrics {
    /// The Prometheus text exposition of every series, with the limit gauges read from `limits`
    /// just before.
    pub fn render(&self, limits: &Limits) -> String {
        // A panic in a limiter's `state` poisons nothing worth protecting: the guard only orders
        // scrapes.
        let _one_at_a_time = self.gauges.scrape.lock().unwrap_or_else(|e| e.into_inner());
        self.gauges.fill(limits.limiters());
        let mut out = Vec::with_capacity(16 * 1024);
        // `gather` drops empty families, the only input the encoder refuses; should it fail
        // anyway, a partial page plus a log line beats a failed scrape.
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}
