//! Metrics: the registry and the named series. (Interface; the Prometheus implementation
//! follows.) Layers call these methods; names and labels are a contract with dashboards.
//!
//! Labels stay bounded whatever the traffic: `route` is the route's pattern from the config (or
//! `unmatched`), `limit` and `upstream` are config names, `method` is a standard method or
//! `other`, and `status` is a number. Tokens, client ips and header keys are never labels.

use std::time::Duration;

use http::Method;

use crate::config::Config;

/// Every series pacer exports.
pub struct Metrics {}

impl Metrics {
    pub fn new(_config: &Config) -> Metrics {
        Metrics {}
    }

    /// A client-facing answer: `pacer_requests_total` and `pacer_request_duration_seconds`.
    pub fn request(&self, _route: Option<usize>, _method: &Method, _status: u16, _took: Duration) {}

    /// An upstream attempt: `pacer_upstream_requests_total`, `pacer_upstream_duration_seconds`,
    /// and `pacer_upstream_throttled_total` when the status is 429.
    pub fn upstream(&self, _upstream: usize, _route: Option<usize>, _status: u16, _took: Duration) {
    }

    /// `pacer_retries_total{route,reason}`.
    pub fn retry(&self, _route: Option<usize>, _reason: &'static str) {}

    /// `pacer_rejected_total{limit,reason}`: queue_full, queue_timeout, rate_limited, gave_up.
    pub fn rejected(&self, _limit: usize, _reason: &'static str) {}

    /// `pacer_queue_wait_seconds{limit}`.
    pub fn queue_wait(&self, _limit: usize, _waited: Duration) {}
}
