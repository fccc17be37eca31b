//! Metrics: the registry and the named series. Layers call the methods below; names and labels
//! are a contract with dashboards (`examples/grafana/pacer-dashboard.json`) and alerts.
//!
//! Labels stay bounded whatever the traffic: `route` is the route's pattern from the config (or
//! `unmatched`), `limit` and `upstream` are config names, `method` is a standard method or
//! `other`, and `status` is a number. Tokens, client ips and header keys are never labels.
//!
//! The request path never looks a series up by its label strings: every handle for a route,
//! limit or upstream is resolved here at construction and indexed by the config's own indices
//! (`labels.rs` explains the status cache). Series with bounded labels are created up front, so
//! they export 0 before the first event and `rate()` sees the first increment. Gauges describing
//! a limit's live state belong to shaping, which registers a collector for them in this
//! registry ([`Limits::register_metrics`](crate::shape::limits::Limits::register_metrics)).

mod labels;
mod scrape;

use std::time::Duration;

use http::Method;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
};

use self::labels::{method_index, ReasonCounters, StatusCounters, METHODS};
use crate::config::Config;
use crate::exchange::{LimitId, RetryReason, RouteId, UpstreamId};

pub use self::scrape::CONTENT_TYPE;

/// The `route` label of requests on no configured route.
pub const UNMATCHED: &str = "unmatched";

/// Why a limit refused a request: the `reason` label of `pacer_rejected_total`. Every one is
/// created up front for every limit; the README's metrics table and the dashboard list them
/// (`tests/it/observe/metrics.rs` compares all three with a live pacer's series).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    QueueFull,
    QueueTimeout,
    RateLimited,
    KeysExhausted,
    SharedUnavailable,
    ShuttingDown,
    /// The retry layer gave up: the upstream kept answering 429 behind this limit.
    GaveUp,
}

impl Rejection {
    pub const ALL: [Rejection; 7] = [
        Rejection::QueueFull,
        Rejection::QueueTimeout,
        Rejection::RateLimited,
        Rejection::KeysExhausted,
        Rejection::SharedUnavailable,
        Rejection::ShuttingDown,
        Rejection::GaveUp,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::QueueFull => "queue_full",
            Rejection::QueueTimeout => "queue_timeout",
            Rejection::RateLimited => "rate_limited",
            Rejection::KeysExhausted => "keys_exhausted",
            Rejection::SharedUnavailable => "shared_unavailable",
            Rejection::ShuttingDown => "shutting_down",
            Rejection::GaveUp => "gave_up",
        }
    }

    /// The reason a limiter's refusal counts as; None for an error that is not a refusal
    /// (limiters return none of those).
    pub fn of(err: &crate::error::Error) -> Option<Rejection> {
        use crate::error::Error;
        Some(match err {
            Error::QueueFull { .. } => Rejection::QueueFull,
            Error::QueueTimeout { .. } => Rejection::QueueTimeout,
            Error::RateLimited { .. } => Rejection::RateLimited,
            Error::KeysExhausted { .. } => Rejection::KeysExhausted,
            Error::SharedUnavailable { .. } => Rejection::SharedUnavailable,
            Error::ShuttingDown => Rejection::ShuttingDown,
            _ => return None,
        })
    }
}

/// Client-facing and upstream latency: a fast API answers in tens of milliseconds, a queued or
/// retried request can take a minute.
const LATENCY_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// Queue waits: most are zero or a token interval; `queue.max_wait` defaults to 60 s.
const WAIT_BUCKETS: [f64; 15] = [
    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0,
];

/// Every series pacer exports. Build one per process from the config, share it as
/// `Arc<Metrics>`.
pub struct Metrics {
    registry: Registry,
    /// Indexed by route index; the last entry is `unmatched`.
    routes: Vec<RouteSeries>,
    /// `[upstream index][route slot]`, route slots as in `routes`.
    upstreams: Vec<Vec<UpstreamSeries>>,
    /// Indexed by limit index.
    limits: Vec<LimitSeries>,
    /// `[upstream index][BodyCut as usize]`.
    body_cuts: Vec<[IntCounter; 2]>,
}

struct RouteSeries {
    label: String,
    /// Indexed by [`method_index`].
    requests: Vec<StatusCounters>,
    duration: Histogram,
    retries: ReasonCounters,
}

struct UpstreamSeries {
    requests: StatusCounters,
    throttled: IntCounter,
    duration: Histogram,
}

struct LimitSeries {
    rejected: ReasonCounters,
    queue_wait: Histogram,
}

/// The labelled families, registered once.
struct Families {
    requests: IntCounterVec,
    request_duration: HistogramVec,
    upstream_requests: IntCounterVec,
    upstream_throttled: IntCounterVec,
    upstream_duration: HistogramVec,
    retries: IntCounterVec,
    rejected: IntCounterVec,
    queue_wait: HistogramVec,
    body_cut: IntCounterVec,
}

/// Why pacer cut a streamed response body short (`pacer_upstream_body_cut_total{reason}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyCut {
    /// The whole response took longer than `timeouts.request` (the upstream's fault or the
    /// client's, which did not read it).
    Timeout = 0,
    /// The upstream sent nothing for `timeouts.body_idle`.
    Idle = 1,
}

impl BodyCut {
    pub fn as_str(self) -> &'static str {
        match self {
            BodyCut::Timeout => "timeout",
            BodyCut::Idle => "idle",
        }
    }
}

// === impl Metrics ===

impl Metrics {
    pub fn new(config: &Config) -> Metrics {
        let registry = Registry::new();
        let f = Families::new();
        f.register(&registry);
        scrape::register_build_info(&registry);
        let mut route_labels: Vec<&str> = config.routes.iter().map(|r| r.name.as_str()).collect();
        route_labels.push(UNMATCHED);
        let upstreams = config
            .upstreams
            .iter()
            .map(|u| f.upstream_series(&u.name, &route_labels))
            .collect();
        let reasons = Rejection::ALL.map(Rejection::as_str);
        let limits = config
            .limits
            .iter()
            .map(|l| LimitSeries {
                rejected: ReasonCounters::new(&f.rejected, &l.name, &reasons),
                queue_wait: f.queue_wait.with_label_values(&[&l.name]),
            })
            .collect();
        let body_cuts = config
            .upstreams
            .iter()
            .map(|u| {
                [BodyCut::Timeout, BodyCut::Idle]
                    .map(|c| f.body_cut.with_label_values(&[&u.name, c.as_str()]))
            })
            .collect();
        Metrics {
            body_cuts,
            routes: f.route_series(&route_labels),
            upstreams,
            limits,
            registry,
        }
    }

    /// A client-facing answer: `pacer_requests_total` and `pacer_request_duration_seconds`.
    pub fn request(&self, route: Option<RouteId>, method: &Method, status: u16, took: Duration) {
        let series = self.route(route);
        series.requests[method_index(method)].inc(status);
        series.duration.observe(took.as_secs_f64());
    }

    /// An upstream attempt: `pacer_upstream_requests_total`, `pacer_upstream_duration_seconds`,
    /// and `pacer_upstream_throttled_total` when the status is 429.
    pub fn upstream(
        &self,
        upstream: UpstreamId,
        route: Option<RouteId>,
        status: u16,
        took: Duration,
    ) {
        let Some(per_route) = self.upstreams.get(upstream.index()) else {
            return;
        };
        let series = &per_route[self.route_slot(route)];
        series.requests.inc(status);
        series.duration.observe(took.as_secs_f64());
        if status == 429 {
            series.throttled.inc();
        }
    }

    /// `pacer_upstream_body_cut_total{upstream,reason}`: a streamed answer cut short.
    pub fn body_cut(&self, upstream: UpstreamId, why: BodyCut) {
        if let Some(c) = self.body_cuts.get(upstream.index()) {
            c[why as usize].inc();
        }
    }

    /// `pacer_retries_total{route,reason}`.
    pub fn retry(&self, route: Option<RouteId>, reason: &'static str) {
        self.route(route).retries.inc(reason);
    }

    /// `pacer_rejected_total{limit,reason}`.
    pub fn rejected(&self, limit: LimitId, reason: Rejection) {
        if let Some(l) = self.limits.get(limit.index()) {
            l.rejected.inc(reason.as_str());
        }
    }

    /// `pacer_queue_wait_seconds{limit}`.
    pub fn queue_wait(&self, limit: LimitId, waited: Duration) {
        if let Some(l) = self.limits.get(limit.index()) {
            l.queue_wait.observe(waited.as_secs_f64());
        }
    }

    /// The `route` label of a route (`unmatched` for None), for log lines that should
    /// name a route the way the metrics do.
    pub fn route_label(&self, route: Option<RouteId>) -> &str {
        &self.route(route).label
    }

    /// The registry, for callers that want to gather or add series of their own.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// An index outside the config (a wiring bug) counts as `unmatched` rather than panicking
    /// on a live request.
    fn route_slot(&self, route: Option<RouteId>) -> usize {
        let unmatched = self.routes.len() - 1;
        route
            .map(RouteId::index)
            .filter(|&r| r < unmatched)
            .unwrap_or(unmatched)
    }

    fn route(&self, route: Option<RouteId>) -> &RouteSeries {
        &self.routes[self.route_slot(route)]
    }
}

// === impl Families ===

impl Families {
    fn new() -> Families {
        Families {
            requests: counter(
                "pacer_requests_total",
                "Answers pacer sent to clients, its own errors included.",
                &["route", "method", "status"],
            ),
            request_duration: histogram(
                "pacer_request_duration_seconds",
                "Time from a client's request to the head of pacer's answer.",
                &["route"],
                &LATENCY_BUCKETS,
            ),
            upstream_requests: counter(
                "pacer_upstream_requests_total",
                "Attempts sent to an upstream API, by the status it answered.",
                &["upstream", "route", "status"],
            ),
            upstream_throttled: counter(
                "pacer_upstream_throttled_total",
                "429 answers from an upstream API.",
                &["upstream", "route"],
            ),
            upstream_duration: histogram(
                "pacer_upstream_duration_seconds",
                "Time from sending an attempt upstream to its response head.",
                &["upstream", "route"],
                &LATENCY_BUCKETS,
            ),
            retries: counter(
                "pacer_retries_total",
                "Requests pacer sent upstream again, by why.",
                &["route", "reason"],
            ),
            rejected: counter(
                "pacer_rejected_total",
                "Requests a limit refused, by why.",
                &["limit", "reason"],
            ),
            queue_wait: histogram(
                "pacer_queue_wait_seconds",
                "Time a request waited to pass a limit.",
                &["limit"],
                &WAIT_BUCKETS,
            ),
            body_cut: counter(
                "pacer_upstream_body_cut_total",
                "Response bodies pacer cut short, by why: past timeouts.request (a stalled upstream or a client that did not read) or a pause of timeouts.body_idle.",
                &["upstream", "reason"],
            ),
        }
    }

    fn register(&self, registry: &Registry) {
        for c in [
            &self.requests,
            &self.upstream_requests,
            &self.upstream_throttled,
            &self.retries,
            &self.rejected,
            &self.body_cut,
        ] {
            register(registry, c.clone());
        }
        for h in [
            &self.request_duration,
            &self.upstream_duration,
            &self.queue_wait,
        ] {
            register(registry, h.clone());
        }
    }

    /// Per route slot (`unmatched` last): a status cache per method, the latency histogram,
    /// and the retry reasons the retry layer knows.
    fn route_series(&self, route_labels: &[&str]) -> Vec<RouteSeries> {
        let retry_reasons: Vec<&'static str> =
            RetryReason::ALL.iter().map(|r| r.as_str()).collect();
        route_labels
            .iter()
            .map(|&route| RouteSeries {
                label: route.to_owned(),
                requests: METHODS
                    .iter()
                    .map(|m| StatusCounters::new(&self.requests, &[route, m]))
                    .collect(),
                duration: self.request_duration.with_label_values(&[route]),
                retries: ReasonCounters::new(&self.retries, route, &retry_reasons),
            })
            .collect()
    }

    /// One upstream's series for every route slot: any route may go to any upstream.
    fn upstream_series(&self, upstream: &str, route_labels: &[&str]) -> Vec<UpstreamSeries> {
        route_labels
            .iter()
            .map(|&route| UpstreamSeries {
                requests: StatusCounters::new(&self.upstream_requests, &[upstream, route]),
                throttled: self
                    .upstream_throttled
                    .with_label_values(&[upstream, route]),
                duration: self.upstream_duration.with_label_values(&[upstream, route]),
            })
            .collect()
    }
}

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric definition")
}

fn histogram(name: &str, help: &str, labels: &[&str], buckets: &[f64]) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    HistogramVec::new(opts, labels).expect("a valid metric definition")
}

/// Registration fails only for a duplicate or malformed name: a bug in this file.
fn register(registry: &Registry, c: impl prometheus::core::Collector + 'static) {
    registry
        .register(Box::new(c))
        .expect("metric names are unique");
}
