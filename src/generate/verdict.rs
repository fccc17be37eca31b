//! Pass or fail: the scenario's thresholds checked against what the run measured, and whether
//! any request succeeded at all. `pacer generate` exits non-zero on either (see `cli.rs`).

use serde::Serialize;

use super::report::{PhaseSummary, Summary};
use super::scenario::Thresholds;

/// One threshold and how the run did against it.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// As written in the scenario: `p99`, `error_rate`, `rate_achieved`.
    pub name: &'static str,
    /// The limit in words: `<= 500 ms`, `>= 99%`.
    pub limit: String,
    /// What the run measured, in the same unit; `none` when there was nothing to measure
    /// (no response at all for a latency threshold).
    pub actual: String,
    pub passed: bool,
}

/// Why a finished run counts as failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// No request succeeded (exit 1).
    AllFailed(String),
    /// Thresholds were crossed (exit 3).
    Crossed(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::AllFailed(why) | Failure::Crossed(why) => f.write_str(why),
        }
    }
}

/// Requests that failed: no response, or a status of 400 or more (k6's `http_req_failed`).
pub fn failed(s: &Summary) -> u64 {
    s.errors + s.status.range(400..).map(|(_, n)| n).sum::<u64>()
}

/// Every threshold set in `t`, checked against the totals and the open-model phases.
pub fn check(t: &Thresholds, total: &Summary, phases: &[&PhaseSummary]) -> Vec<Check> {
    let mut out = Vec::new();
    let answered = !total.status.is_empty();
    let l = &total.latency_ms;
    let latencies = [
        ("p50", t.p50, l.p50),
        ("p90", t.p90, l.p90),
        ("p99", t.p99, l.p99),
    ];
    let latencies = latencies.into_iter().chain([("max", t.max, l.max)]);
    for (name, limit, actual) in latencies {
        if let Some(limit) = limit {
            let limit_ms = limit.as_secs_f64() * 1000.0;
            out.push(Check {
                name,
                limit: format!("<= {} ms", number(limit_ms)),
                actual: match answered {
                    true => format!("{} ms", number(actual)),
                    false => "none".into(),
                },
                passed: answered && actual <= limit_ms,
            });
        }
    }
    if let Some(limit) = t.error_rate {
        let rate = match total.requests {
            0 => 0.0,
            n => failed(total) as f64 / n as f64,
        };
        out.push(Check {
            name: "error_rate",
            limit: format!("<= {}", percent(limit)),
            actual: percent(rate),
            passed: rate <= limit,
        });
    }
    if let Some(limit) = t.rate_achieved {
        // The weakest open phase: a stall in one is not hidden by the others.
        let achieved = phases
            .iter()
            .filter_map(|p| Some(p.sent_rps? / p.target_rps?))
            .fold(f64::INFINITY, f64::min);
        out.push(Check {
            name: "rate_achieved",
            limit: format!(">= {}", percent(limit)),
            actual: percent(achieved.min(1.0)),
            // A scheduler sends a phase's arrivals within microseconds of their time, so a
            // tiny shortfall is rounding in the elapsed time, not a missed arrival.
            passed: achieved + 1e-6 >= limit,
        });
    }
    out
}

/// `12.3`, `500`: one decimal at most, none when whole.
fn number(v: f64) -> String {
    let text = format!("{v:.1}");
    text.strip_suffix(".0").map(str::to_owned).unwrap_or(text)
}

/// A fraction as a percentage: `1%`, `99.5%`, `0.03%`.
fn percent(fraction: f64) -> String {
    let p = fraction * 100.0;
    match p {
        p if p != 0.0 && p < 0.1 => format!("{p:.2}%"),
        p => format!("{}%", number(p)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_for_numbers() {
        assert_eq!(number(500.0), "500");
        assert_eq!(number(12.34), "12.3");
        assert_eq!(percent(0.01), "1%");
        assert_eq!(percent(0.995), "99.5%");
        assert_eq!(percent(0.0003), "0.03%");
        assert_eq!(percent(0.0), "0%");
    }
}
