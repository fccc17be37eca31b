//! Series of limits shared through Redis: the Redis client's call latency and errors (kept by
//! the store, adopted here), and, read at scrape time, which mode each shared limit is in and
//! how many requests went through unshaped under `on_unavailable: allow`.

use std::sync::{Arc, Weak};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounterVec, IntGaugeVec, Opts};

use super::{register, Metrics};
use crate::shape::layer::Limits;

/// Every value `pacer_shared_mode`'s `mode` label takes, each exported (1 for the current one).
pub const MODES: [&str; 4] = ["shared", "local_fallback", "reject", "allow"];

const MODE: (&str, &str) = (
    "pacer_shared_mode",
    "1 for the mode a shared limit is in: shared, or while Redis is unavailable local_fallback, reject or allow.",
);
const UNSHAPED: (&str, &str) = (
    "pacer_shared_unshaped_total",
    "Requests a shared limit let through unshaped while Redis was unavailable (on_unavailable: allow).",
);

impl Metrics {
    /// Adds the series of shared limits, when `limits` has any.
    pub fn adopt_shared(&self, limits: &Arc<Limits>) {
        let Some(store) = limits.store() else {
            return;
        };
        let stats = store.stats();
        register(&self.registry, stats.latency.clone());
        register(&self.registry, stats.errors.clone());
        register(&self.registry, SharedModes::new(Arc::downgrade(limits)));
    }
}

/// Reads the shared limits' state when Prometheus scrapes.
struct SharedModes {
    limits: Weak<Limits>,
    descs: Vec<Desc>,
}

impl SharedModes {
    fn new(limits: Weak<Limits>) -> SharedModes {
        let desc = |(name, help): (&str, &str), labels: &[&str]| {
            let labels = labels.iter().map(|l| l.to_string()).collect();
            Desc::new(name.into(), help.into(), labels, Default::default()).expect("valid desc")
        };
        SharedModes {
            limits,
            descs: vec![desc(MODE, &["limit", "mode"]), desc(UNSHAPED, &["limit"])],
        }
    }
}

impl Collector for SharedModes {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let Some(limits) = self.limits.upgrade() else {
            return Vec::new();
        };
        let mode = IntGaugeVec::new(Opts::new(MODE.0, MODE.1), &["limit", "mode"]).expect("valid");
        let unshaped =
            IntCounterVec::new(Opts::new(UNSHAPED.0, UNSHAPED.1), &["limit"]).expect("valid");
        for limiter in limits.limiters() {
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
}
