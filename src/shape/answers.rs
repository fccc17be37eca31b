//! Reporting upstream answers to the limits that learn from them (`learn:`).
//!
//! A limit that learns counts the requests it released and has not heard back about; every
//! release must therefore be reported exactly once: with what the answer's headers advertised,
//! or as no answer when the request failed, a later limit refused it, or the client went away
//! (the guard's drop).

use std::time::{Duration, SystemTime};

use super::layer::{Limits, Passed};
use super::LimitKey;
use crate::exchange::LimitId;

/// The limits a request passed, owned until its answer is reported.
pub(super) struct Answers<'a> {
    limits: &'a Limits,
    passed: Passed,
    /// Whether a limit passed learns (else there is nothing to report).
    learning: bool,
}

// === impl Answers ===

impl<'a> Answers<'a> {
    pub(super) fn new(limits: &'a Limits) -> Answers<'a> {
        Answers {
            limits,
            passed: Passed::default(),
            learning: false,
        }
    }

    /// The request passed limit `id` with `key` after waiting `waited`.
    pub(super) fn passed(&mut self, id: LimitId, key: LimitKey, waited: Duration) {
        self.learning |= self.limits.limiter(id).learns();
        self.passed.waited += waited;
        self.passed.keys.push((id, key));
    }

    pub(super) fn waited(&self) -> Duration {
        self.passed.waited
    }

    /// The answer came: tells the limits that learn what its headers advertised, and hands
    /// back what the request passed.
    pub(super) fn answer(mut self, headers: &http::HeaderMap) -> Passed {
        if self.learning {
            let advertised = crate::ratelimit::advertised(headers, SystemTime::now());
            self.report(advertised.as_ref());
        }
        std::mem::take(&mut self.passed)
    }

    fn report(&mut self, advertised: Option<&crate::ratelimit::Advertised>) {
        if !std::mem::take(&mut self.learning) {
            return;
        }
        for &(i, key) in &self.passed.keys {
            let limiter = self.limits.limiter(i);
            if limiter.learns() {
                limiter.on_advertised(key, advertised);
            }
        }
    }
}

impl Drop for Answers<'_> {
    fn drop(&mut self) {
        self.report(None);
    }
}
