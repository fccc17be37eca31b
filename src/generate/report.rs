//! The report: what `--out` writes as JSON, what the summary table prints, what `--html` draws.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Serialize, Serializer};

use super::record::{ErrorKind, Stats, Totals};
use super::scenario::{Load, Phase, Scenario};
use super::verdict::{self, Check};

mod table;

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The scenario's `name`, or its file name.
    pub scenario: String,
    /// When the run started, as an HTTP date (`Sat, 05 Dec 2026 23:09:06 GMT`).
    pub started_at: String,
    pub target: String,
    /// The forward proxy requests went through, if any.
    pub proxy: Option<String>,
    /// From the first arrival to the end of the last phase (in-flight requests finishing after
    /// it are counted but do not stretch it).
    pub duration_s: f64,
    #[serde(flatten)]
    pub total: Summary,
    pub by_request: Named<Summary>,
    pub by_phase: Named<PhaseSummary>,
    /// Why requests got no response, by kind and cause, the most frequent first.
    pub error_causes: Vec<ErrorCause>,
    /// The scenario's thresholds and how the run did against each.
    pub thresholds: Vec<Check>,
    /// Answered requests by latency, in ten buckets per power of ten.
    pub latency_histogram: Vec<Bucket>,
    /// One entry per second of the run.
    pub timeline: Vec<Second>,
}

/// Answered requests with a latency above the previous bucket's bound, up to `le_ms`.
#[derive(Debug, Clone, Serialize)]
pub struct Bucket {
    pub le_ms: f64,
    pub count: u64,
}

/// How many requests failed for one cause.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorCause {
    /// `connect`, `timeout`, `io` or `dropped`.
    pub kind: &'static str,
    /// In words, with the address concerned: `connection refused to 127.0.0.1:9000`.
    pub cause: String,
    pub count: u64,
}

/// Counts and latency of a set of requests.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Every request due: answered, failed or dropped.
    pub requests: u64,
    /// Responses by status code.
    pub status: BTreeMap<u16, u64>,
    /// Requests without a response (`error_kinds` says why).
    pub errors: u64,
    pub error_kinds: BTreeMap<&'static str, u64>,
    /// `requests` per second of the run (or of the phase).
    pub rps: f64,
    /// Latency of answered requests; in open-model phases measured from each request's
    /// intended start, so a slow target cannot hide its delay by slowing the generator.
    pub latency_ms: Latency,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

/// A phase's summary and what it was set to do.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseSummary {
    #[serde(flatten)]
    pub summary: Summary,
    /// `open` or `closed`.
    pub model: &'static str,
    /// When it started, in seconds from the start of the run.
    pub start_s: f64,
    pub duration_s: f64,
    /// Open model: the arrival rate asked for at its start and at its end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ramp_rps: Option<(f64, f64)>,
    /// Open model: the mean arrival rate asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_rps: Option<f64>,
    /// Open model: arrivals sent per second, the time the scheduler took to send them
    /// included; equal to `target_rps` when it kept up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub achieved_rps: Option<f64>,
    /// Open model: arrivals actually sent per second, the dropped ones left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_rps: Option<f64>,
    /// Open model: how late arrivals were handed to the client after their intended start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_lag_ms: Option<Latency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users: Option<u32>,
}

/// One second of the run, by the time requests finished.
#[derive(Debug, Clone, Serialize)]
pub struct Second {
    /// End of this interval, in seconds from the start.
    pub t: f64,
    /// Its length: 1 except for the last, partial one.
    pub span_s: f64,
    /// Requests started in it.
    pub sent: u64,
    /// Requests finished in it (answered or failed).
    pub completed: u64,
    pub status: BTreeMap<u16, u64>,
    pub errors: u64,
    /// Open model: arrivals not sent because `max_in_flight` were in flight.
    pub dropped: u64,
    /// Closed model: users running at the end of this second.
    pub users: u64,
    /// Latency of the responses in it; 0 when there were none (`completed - errors` is 0).
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub by_request: Named<RequestSecond>,
}

/// One request name's share of a second.
#[derive(Debug, Clone, Serialize)]
pub struct RequestSecond {
    pub completed: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Entries serialized as a JSON object in their own order (phases in file order).
#[derive(Debug, Clone)]
pub struct Named<T>(pub Vec<(String, T)>);

/// What a run measured about one phase, besides its counts.
pub struct PhaseRun {
    pub elapsed: Duration,
    /// Open model: arrivals handed to the client or dropped (0 for a closed-model phase).
    pub arrivals_sent: u64,
    /// Open model: lateness of each arrival, in microseconds.
    pub lag_us: Option<Histogram<u64>>,
}

// === impl Named ===

impl<T> Named<T> {
    pub fn get(&self, name: &str) -> Option<&T> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

impl<T: Serialize> Serialize for Named<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

// === impl Summary ===

impl Summary {
    pub fn new(stats: &Stats, seconds: f64) -> Summary {
        let requests = stats.requests();
        Summary {
            requests,
            status: stats.status.clone(),
            errors: stats.error_count(),
            error_kinds: stats.errors.iter().map(|(k, &n)| (k.as_str(), n)).collect(),
            rps: if seconds > 0.0 {
                requests as f64 / seconds
            } else {
                0.0
            },
            latency_ms: Latency::of(&stats.latency_us),
        }
    }

    pub fn status_count(&self, code: u16) -> u64 {
        self.status.get(&code).copied().unwrap_or(0)
    }
}

impl Latency {
    /// Quantiles of a histogram of microseconds, in milliseconds.
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
        }
    }
}

// === impl PhaseSummary ===

impl PhaseSummary {
    fn new(phase: &Phase, stats: &Stats, run: &PhaseRun, start_s: f64) -> PhaseSummary {
        let duration_s = phase.duration.as_secs_f64();
        let summary = Summary::new(stats, duration_s);
        match phase.load {
            Load::Open { rate, to } => PhaseSummary {
                summary,
                model: "open",
                start_s,
                duration_s,
                ramp_rps: Some((rate, to)),
                target_rps: Some((rate + to) / 2.0),
                achieved_rps: Some(run.arrivals_sent as f64 / run.elapsed.as_secs_f64()),
                sent_rps: Some(
                    run.arrivals_sent.saturating_sub(dropped(stats)) as f64
                        / run.elapsed.as_secs_f64(),
                ),
                schedule_lag_ms: run.lag_us.as_ref().map(Latency::of),
                users: None,
            },
            Load::Closed { users, .. } => PhaseSummary {
                summary,
                model: "closed",
                start_s,
                duration_s,
                ramp_rps: None,
                target_rps: None,
                achieved_rps: None,
                sent_rps: None,
                schedule_lag_ms: None,
                users: Some(users),
            },
        }
    }
}

/// Bucket bounds within a power of ten: the R10 series of preferred numbers, so the
/// buckets are even on a log scale and their labels round.
const R10: [f64; 10] = [1.0, 1.25, 1.6, 2.0, 2.5, 3.15, 4.0, 5.0, 6.3, 8.0];

/// Counts in buckets bounded by the R10 series times powers of ten (microseconds), from the
/// first bucket with a count to the last.
fn histogram(h: &Histogram<u64>) -> Vec<Bucket> {
    if h.is_empty() {
        return Vec::new();
    }
    let bounds: Vec<u64> = (0..12)
        .flat_map(|e| R10.map(|m| (m * 10f64.powi(e)).round() as u64))
        .collect();
    let mut counts = vec![0u64; bounds.len()];
    for v in h.iter_recorded() {
        let value = h.highest_equivalent(v.value_iterated_to());
        let at = bounds.partition_point(|&b| b < value).min(bounds.len() - 1);
        counts[at] += v.count_at_value();
    }
    let first = counts.iter().position(|&n| n > 0).unwrap_or(0);
    let last = counts.iter().rposition(|&n| n > 0).unwrap_or(0);
    (first..=last)
        .map(|i| Bucket {
            le_ms: bounds[i] as f64 / 1000.0,
            count: counts[i],
        })
        .collect()
}

fn dropped(stats: &Stats) -> u64 {
    stats.errors.get(&ErrorKind::Dropped).copied().unwrap_or(0)
}

// === impl Report ===

impl Report {
    /// Puts the pieces of a finished run together.
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        scenario: &Scenario,
        started_at: std::time::SystemTime,
        proxy: Option<&str>,
        elapsed: Duration,
        totals: &Totals,
        runs: &[PhaseRun],
        causes: Vec<(ErrorKind, String, u64)>,
        timeline: Vec<Second>,
    ) -> Report {
        let secs = elapsed.as_secs_f64();
        let total = Summary::new(&totals.total, secs);
        let by_request = scenario
            .requests
            .iter()
            .zip(&totals.by_request)
            .map(|(r, stats)| (r.name.clone(), Summary::new(stats, secs)))
            .collect();
        let mut start_s = 0.0;
        let by_phase = scenario
            .phases
            .iter()
            .zip(&totals.by_phase)
            .zip(runs)
            .map(|((phase, stats), run)| {
                let summary = PhaseSummary::new(phase, stats, run, start_s);
                start_s += run.elapsed.as_secs_f64();
                (phase.name.clone(), summary)
            })
            .collect::<Vec<_>>();
        let phases: Vec<&PhaseSummary> = by_phase.iter().map(|(_, p)| p).collect();
        let thresholds = verdict::check(&scenario.thresholds, &total, &phases);
        Report {
            scenario: scenario.name.clone().unwrap_or_else(|| "scenario".into()),
            started_at: httpdate::fmt_http_date(started_at),
            target: scenario.target.to_string(),
            proxy: proxy.map(str::to_owned),
            duration_s: secs,
            total,
            by_request: Named(by_request),
            by_phase: Named(by_phase),
            error_causes: causes
                .into_iter()
                .map(|(kind, cause, count)| ErrorCause {
                    kind: kind.as_str(),
                    cause,
                    count,
                })
                .collect(),
            thresholds,
            latency_histogram: histogram(&totals.total.latency_us),
            timeline,
        }
    }

    /// Whether no request succeeded (each got no response, or a status of 400 or more).
    pub fn all_failed(&self) -> bool {
        self.total.requests == 0 || verdict::failed(&self.total) == self.total.requests
    }

    /// Whether the run failed as a whole: no request succeeded, or thresholds were crossed.
    pub fn failure(&self) -> Option<verdict::Failure> {
        if self.all_failed() {
            let n = self.total.requests;
            let why = format!("every request failed ({n} of {n}); the table above says how");
            return Some(verdict::Failure::AllFailed(why));
        }
        let crossed: Vec<String> = (self.thresholds.iter().filter(|c| !c.passed))
            .map(|c| format!("{} {} (measured {})", c.name, c.limit, c.actual))
            .collect();
        match crossed.is_empty() {
            true => None,
            false => Some(verdict::Failure::Crossed(format!(
                "thresholds crossed: {}",
                crossed.join(", ")
            ))),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }
}
