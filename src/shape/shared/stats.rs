//! What the Redis client counts: call latency and errors by kind. The series live here, with
//! the store, and `Limits::register_metrics` (`shape/gauges.rs`) adds them to the registry, so
//! the client needs no handle on the registry.

use prometheus::{Histogram, HistogramOpts, IntCounterVec, Opts};
use std::time::Duration;

/// Loopback Redis answers in tens of microseconds; `shared.timeout` defaults to 50 ms.
const BUCKETS: [f64; 10] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
];

/// The kinds of Redis failure, created up front so each exports 0.
pub const ERROR_KINDS: [&str; 5] = ["timeout", "connection", "auth", "response", "other"];

pub struct Stats {
    pub latency: Histogram,
    pub errors: IntCounterVec,
}

impl Default for Stats {
    fn default() -> Stats {
        let opts = HistogramOpts::new(
            "pacer_shared_redis_call_seconds",
            "Time of one Redis call of a shared limit, timeouts included.",
        )
        .buckets(BUCKETS.to_vec());
        let errors = IntCounterVec::new(
            Opts::new(
                "pacer_shared_redis_errors_total",
                "Redis calls of shared limits that failed, by kind.",
            ),
            &["kind"],
        )
        .expect("valid metric");
        for kind in ERROR_KINDS {
            errors.with_label_values(&[kind]);
        }
        Stats {
            latency: Histogram::with_opts(opts).expect("valid metric"),
            errors,
        }
    }
}

impl Stats {
    pub fn latency(&self, took: Duration) {
        self.latency.observe(took.as_secs_f64());
    }

    pub fn error(&self, kind: &'static str) {
        self.errors.with_label_values(&[kind]).inc();
    }
}
