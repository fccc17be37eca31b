//! The gauges of what limits with `learn:` learned from the API's rate-limit headers, read at
//! scrape time like the other limit gauges. A value not learned yet has no series.

use prometheus::{GaugeVec, Opts, Registry};

use super::register;
use crate::shape::LimitState;

pub(super) struct LearnedGauges {
    quota: GaugeVec,
    window: GaugeVec,
    remaining: GaugeVec,
    rate: GaugeVec,
}

// === impl LearnedGauges ===

impl LearnedGauges {
    pub(super) fn register(registry: &Registry) -> LearnedGauges {
        let family = |name: &str, help: &str| {
            let g = GaugeVec::new(Opts::new(name, help), &["limit"])
                .expect("a valid metric definition");
            register(registry, g.clone());
            g
        };
        LearnedGauges {
            quota: family(
                "pacer_learned_quota",
                "Requests per window the API advertises for a learning limit's keys.",
            ),
            window: family(
                "pacer_learned_window_seconds",
                "The window the API advertises (or the longest reset lately seen), in seconds.",
            ),
            remaining: family(
                "pacer_learned_remaining",
                "The latest remaining the API advertised for a key of the limit.",
            ),
            rate: family(
                "pacer_learned_rate",
                "The learned pace in requests per second: quota / window less the headroom.",
            ),
        }
    }

    pub(super) fn set(&self, name: &str, s: &LimitState) {
        let learned = s.learned.as_ref();
        let values = [
            (&self.quota, learned.and_then(|l| l.quota).map(f64::from)),
            (
                &self.window,
                learned
                    .and_then(|l| l.window_ms)
                    .map(|ms| ms as f64 / 1000.0),
            ),
            (
                &self.remaining,
                learned.and_then(|l| l.remaining).map(f64::from),
            ),
            (&self.rate, learned.and_then(|l| l.rate)),
        ];
        for (gauge, value) in values {
            match value {
                Some(v) => gauge.with_label_values(&[name]).set(v),
                None => {
                    let _ = gauge.remove_label_values(&[name]);
                }
            }
        }
    }
}
