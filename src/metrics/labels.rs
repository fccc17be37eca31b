//! Bounded label values, and handles resolved once instead of per request.
//!
//! `with_label_values` hashes the label strings and takes a read lock on every call. On the
//! request path that is avoidable: routes, limits and upstreams are known at construction, so
//! their handles are resolved then. Only `status` is open-ended; a [`StatusCounters`] resolves
//! the common codes once, on first use, and falls back to the lookup for rare ones.

use std::sync::OnceLock;

use http::Method;
use prometheus::{IntCounter, IntCounterVec};

/// The `method` label values; anything else is `other`, so a client cannot grow the label set.
pub const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "other",
];

/// The index into [`METHODS`] of a request method.
pub fn method_index(method: &Method) -> usize {
    // Comparing against the constants is a tag comparison for standard methods, no string work.
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    KNOWN
        .iter()
        .position(|m| m == method)
        .unwrap_or(METHODS.len() - 1)
}

/// Statuses an API proxy answers often enough to deserve a cached handle: the API's usual
/// answers and every status pacer itself produces.
const COMMON: [u16; 26] = [
    200, 201, 202, 204, 207, 301, 302, 304, 400, 401, 403, 404, 405, 407, 408, 409, 413, 415, 422,
    429, 431, 500, 501, 502, 503, 504,
];

fn common_slot(status: u16) -> Option<usize> {
    COMMON.iter().position(|&s| s == status)
}

/// One counter per status for a fixed set of other labels (for example route and method).
pub struct StatusCounters {
    vec: IntCounterVec,
    /// The label values that come before `status`.
    prefix: Vec<String>,
    slots: Box<[OnceLock<IntCounter>]>,
}

// === impl StatusCounters ===

impl StatusCounters {
    /// `vec` must have the labels of `prefix` followed by `status`, in that order.
    pub fn new(vec: &IntCounterVec, prefix: &[&str]) -> StatusCounters {
        StatusCounters {
            vec: vec.clone(),
            prefix: prefix.iter().map(|s| (*s).to_owned()).collect(),
            slots: COMMON.iter().map(|_| OnceLock::new()).collect(),
        }
    }

    pub fn inc(&self, status: u16) {
        match common_slot(status) {
            Some(i) => self.slots[i].get_or_init(|| self.lookup(status)).inc(),
            None => self.lookup(status).inc(),
        }
    }

    /// A status label is at most 999 (hyper refuses others), so the label set stays bounded.
    fn lookup(&self, status: u16) -> IntCounter {
        let status = status.to_string();
        let mut values: Vec<&str> = self.prefix.iter().map(String::as_str).collect();
        values.push(&status);
        self.vec.with_label_values(&values)
    }
}

/// Counters for a label whose values are `&'static str` reasons named by the code that counts
/// them (retry and rejection reasons). Known reasons are resolved at construction.
pub struct ReasonCounters {
    vec: IntCounterVec,
    prefix: String,
    known: Vec<(&'static str, IntCounter)>,
}

// === impl ReasonCounters ===

impl ReasonCounters {
    /// `vec` has two labels: `prefix`'s, then the reason.
    pub fn new(vec: &IntCounterVec, prefix: &str, reasons: &[&'static str]) -> ReasonCounters {
        let known = reasons
            .iter()
            .map(|&r| (r, vec.with_label_values(&[prefix, r])))
            .collect();
        ReasonCounters {
            vec: vec.clone(),
            prefix: prefix.to_owned(),
            known,
        }
    }

    pub fn inc(&self, reason: &'static str) {
        // Reasons are a handful of literals; a linear scan beats hashing.
        match self.known.iter().find(|(r, _)| *r == reason) {
            Some((_, c)) => c.inc(),
            None => self.vec.with_label_values(&[&self.prefix, reason]).inc(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_bounded() {
        assert_eq!(METHODS[method_index(&Method::GET)], "GET");
        assert_eq!(METHODS[method_index(&Method::PATCH)], "PATCH");
        let odd = Method::from_bytes(b"PROPFIND").unwrap();
        assert_eq!(METHODS[method_index(&odd)], "other");
    }

    #[test]
    fn status_counters_cache_common_and_count_rare() {
        let vec =
            IntCounterVec::new(prometheus::Opts::new("t", "t"), &["route", "status"]).unwrap();
        let c = StatusCounters::new(&vec, &["r"]);
        c.inc(200);
        c.inc(200);
        c.inc(599);
        assert_eq!(vec.with_label_values(&["r", "200"]).get(), 2);
        assert_eq!(vec.with_label_values(&["r", "599"]).get(), 1);
    }
}
