//! What may be retried, and the names of why a retry loop stopped.
//!
//! A 429 is always a retry candidate, whatever the method: the upstream refused the request before
//! acting on it, so sending it again cannot duplicate a side effect. A 502/503/504 may come after
//! the upstream (or something in front of it) has acted, so it is retried only when the user opted
//! in (`retry.on_5xx: idempotent`) and the method is idempotent per RFC 9110 §9.2.2. Connect
//! failures are decided by [`crate::Error::retryable`]; [`RetryReason::Connect`] only names them.
//!
//! Whether a candidate is actually retried (attempts left, deadline, wait within
//! `retry.max_retry_after`, body replayable) is the retry layer's call; when it says no, the
//! [`GiveUp`] reason goes to the client in the [`GAVE_UP_HEADER`].

use http::{Method, StatusCode};

use crate::config::On5xx;

pub use crate::exchange::{RetryReason, GAVE_UP_HEADER};

/// Why pacer stopped retrying and handed the last upstream answer (or error) to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GiveUp {
    /// The upstream asked for a wait longer than `retry.max_retry_after`; the client gets the 429
    /// with that Retry-After at once rather than a connection held open for minutes.
    RetryAfterTooLong,
    /// `retry.max_attempts` attempts were made.
    AttemptsExhausted,
    /// The wait would end after the request's deadline.
    Deadline,
    /// The body was too large to buffer, so it was streamed once and cannot be sent again.
    BodyNotReplayable,
}

/// Whether a response with `status` to a `method` request is a retry candidate, and why.
pub fn retryable_status(status: StatusCode, method: &Method, on_5xx: On5xx) -> Option<RetryReason> {
    match status {
        StatusCode::TOO_MANY_REQUESTS => Some(RetryReason::Throttled),
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
            if on_5xx == On5xx::Idempotent && idempotent(method) =>
        {
            Some(RetryReason::Upstream5xx)
        }
        _ => None,
    }
}

/// The methods `on_5xx: idempotent` retries: GET, HEAD, PUT, DELETE and OPTIONS.
///
/// TRACE is idempotent too but is never proxied upstream in practice, and POST/PATCH are not
/// idempotent; unknown extension methods are treated as unsafe.
pub fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
    )
}

// === impl GiveUp ===

impl GiveUp {
    /// Every reason, for pre-registering metric series.
    pub const ALL: [GiveUp; 4] = [
        GiveUp::RetryAfterTooLong,
        GiveUp::AttemptsExhausted,
        GiveUp::Deadline,
        GiveUp::BodyNotReplayable,
    ];

    /// The value of the [`GAVE_UP_HEADER`] and the metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            GiveUp::RetryAfterTooLong => "retry_after_too_long",
            GiveUp::AttemptsExhausted => "attempts_exhausted",
            GiveUp::Deadline => "deadline",
            GiveUp::BodyNotReplayable => "body_not_replayable",
        }
    }

    /// The reason as a header value (always valid: the names are plain ASCII).
    pub fn header_value(self) -> http::HeaderValue {
        http::HeaderValue::from_static(self.as_str())
    }
}

impl std::fmt::Display for GiveUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDEMPOTENT: [Method; 5] = [
        Method::GET,
        Method::HEAD,
        Method::PUT,
        Method::DELETE,
        Method::OPTIONS,
    ];

    fn all_methods() -> Vec<Method> {
        let mut methods = IDEMPOTENT.to_vec();
        methods.extend([Method::POST, Method::PATCH, Method::TRACE, Method::CONNECT]);
        methods.push(Method::from_bytes(b"PURGE").unwrap());
        methods
    }

    #[test]
    fn throttled_is_always_a_candidate() {
        for method in all_methods() {
            for on_5xx in [On5xx::Never, On5xx::Idempotent] {
                assert_eq!(
                    retryable_status(StatusCode::TOO_MANY_REQUESTS, &method, on_5xx),
                    Some(RetryReason::Throttled)
                );
            }
        }
    }

    #[test]
    fn gateway_errors_only_for_idempotent_methods_when_enabled() {
        for status in [502, 503, 504].map(|s| StatusCode::from_u16(s).unwrap()) {
            for method in all_methods() {
                let expected = IDEMPOTENT
                    .contains(&method)
                    .then_some(RetryReason::Upstream5xx);
                assert_eq!(
                    retryable_status(status, &method, On5xx::Idempotent),
                    expected
                );
                assert_eq!(retryable_status(status, &method, On5xx::Never), None);
            }
        }
    }

    #[test]
    fn other_statuses_are_final() {
        for code in [
            200, 201, 204, 301, 400, 401, 403, 404, 409, 500, 501, 505, 599,
        ] {
            let status = StatusCode::from_u16(code).unwrap();
            for method in all_methods() {
                assert_eq!(retryable_status(status, &method, On5xx::Idempotent), None);
            }
        }
    }

    #[test]
    fn labels() {
        let labels = RetryReason::ALL.map(RetryReason::as_str);
        assert_eq!(labels, ["throttled", "upstream_5xx", "connect"]);
        let labels = GiveUp::ALL.map(GiveUp::as_str);
        assert_eq!(
            labels,
            [
                "retry_after_too_long",
                "attempts_exhausted",
                "deadline",
                "body_not_replayable"
            ]
        );
        assert_eq!(GiveUp::Deadline.header_value(), "deadline");
        assert_eq!(RetryReason::Connect.to_string(), "connect");
    }
}
