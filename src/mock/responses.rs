//! The platform's response shapes: entity lists, error bodies and the exact 429.
//!
//! Bodies are formatted by hand rather than through serde: they are tiny, their only variable
//! parts are numbers and UUIDs (nothing to escape), and this is the benchmark upstream's hot path.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, Response, StatusCode};
use http_body_util::Full;
use uuid::Uuid;

use super::config::{HeaderFamily, RetryAfterMode};
use super::limits::RateStatus;

pub(crate) type Body = Full<Bytes>;

pub(crate) const CORRELATION_ID: &str = "inin-correlation-id";
const RATELIMIT_COUNT: &str = "inin-ratelimit-count";
const RATELIMIT_ALLOWED: &str = "inin-ratelimit-allowed";
const RATELIMIT_RESET: &str = "inin-ratelimit-reset";
pub(crate) const RECEIVED_BYTES: &str = "x-mock-received-bytes";
pub(crate) const RECEIVED_SHA256: &str = "x-mock-received-sha256";

/// What `Retry-After: garbage` sends.
pub const GARBAGE_RETRY_AFTER: &str = "soon";
/// What `Retry-After: huge` sends, in seconds.
pub const HUGE_RETRY_AFTER: u64 = 3600;

/// A random v4 UUID from the thread-local generator (cheaper than asking the OS every time).
pub(crate) fn uuid() -> Uuid {
    uuid::Builder::from_random_bytes(rand::random()).into_uuid()
}

/// A JSON response carrying a fresh correlation id, as every platform answer does.
pub(crate) fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CORRELATION_ID, uuid_header(uuid()));
    response
}

fn uuid_header(id: Uuid) -> HeaderValue {
    let mut buf = Uuid::encode_buffer();
    HeaderValue::from_str(id.hyphenated().encode_lower(&mut buf)).expect("a UUID is a valid header")
}

/// A page holding one entity with a fresh id.
pub(crate) fn entity_list() -> Response<Body> {
    let mut buf = Uuid::encode_buffer();
    let id = uuid().hyphenated().encode_lower(&mut buf).to_owned();
    json(
        StatusCode::OK,
        format!(
            r#"{{"entities":[{{"id":"{id}","name":"Mock entity"}}],"pageSize":25,"pageNumber":1,"total":1,"pageCount":1}}"#
        ),
    )
}

/// The platform's error body: `{"message","code","status","contextId","details","errors"}`.
/// `message` must need no JSON escaping (every caller passes a fixed text).
pub(crate) fn platform_error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let mut buf = Uuid::encode_buffer();
    let context = uuid().hyphenated().encode_lower(&mut buf).to_owned();
    let status_code = status.as_u16();
    json(
        status,
        format!(
            r#"{{"message":"{message}","code":"{code}","status":{status_code},"contextId":"{context}","details":[],"errors":[]}}"#
        ),
    )
}

/// The login service's OAuth error shape.
pub(crate) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response<Body> {
    json(
        status,
        format!(
            r#"{{"error":"{error}","description":"{description}","error_description":"{description}"}}"#
        ),
    )
}

pub(crate) fn token(access_token: &str) -> Response<Body> {
    json(
        StatusCode::OK,
        format!(r#"{{"access_token":"{access_token}","token_type":"bearer","expires_in":86400}}"#),
    )
}

/// The platform's 429, with `Retry-After` as `mode` dictates. The message names the same number
/// as the header whenever the header is a number.
pub(crate) fn too_many(retry_after: u64, mode: RetryAfterMode) -> Response<Body> {
    let seconds = match mode {
        RetryAfterMode::Huge => HUGE_RETRY_AFTER,
        _ => retry_after,
    };
    let message =
        format!("Rate limit exceeded the maximum. Retry the request in [{seconds}] seconds");
    let mut response = platform_error(
        StatusCode::TOO_MANY_REQUESTS,
        "too.many.requests.retry.after",
        &message,
    );
    let value = match mode {
        RetryAfterMode::Normal | RetryAfterMode::Huge => Some(HeaderValue::from(seconds)),
        RetryAfterMode::Omit => None,
        RetryAfterMode::Garbage => Some(HeaderValue::from_static(GARBAGE_RETRY_AFTER)),
        RetryAfterMode::HttpDate => {
            let at = SystemTime::now() + Duration::from_secs(seconds);
            HeaderValue::from_str(&httpdate::fmt_http_date(at)).ok()
        }
    };
    if let Some(value) = value {
        response.headers_mut().insert(RETRY_AFTER, value);
    }
    response
}

/// Adds the rate-limit headers of `family` (the platform sends `inin-ratelimit-*`). Resets are
/// whole seconds rounded up, so a client that waits them out is never early.
pub(crate) fn add_rate_status(
    headers: &mut HeaderMap,
    status: Option<RateStatus>,
    family: HeaderFamily,
) {
    let Some(s) = status else { return };
    let remaining = s.allowed.saturating_sub(s.count);
    let mut put = |name: &'static str, value: HeaderValue| {
        headers.insert(name, value);
    };
    match family {
        HeaderFamily::Genesys => {
            put(RATELIMIT_COUNT, HeaderValue::from(s.count));
            put(RATELIMIT_ALLOWED, HeaderValue::from(s.allowed));
            put(RATELIMIT_RESET, HeaderValue::from(s.reset_secs));
        }
        HeaderFamily::X => {
            put("x-ratelimit-limit", HeaderValue::from(s.allowed));
            put("x-ratelimit-remaining", HeaderValue::from(remaining));
            put("x-ratelimit-reset", HeaderValue::from(s.reset_secs));
        }
        HeaderFamily::Ietf => {
            put("ratelimit-limit", HeaderValue::from(s.allowed));
            put("ratelimit-remaining", HeaderValue::from(remaining));
            put("ratelimit-reset", HeaderValue::from(s.reset_secs));
        }
        HeaderFamily::IetfStructured => {
            let policy = format!(r#""default";q={};w={}"#, s.allowed, s.window_secs);
            let state = format!(r#""default";r={remaining};t={}"#, s.reset_secs);
            if let (Ok(p), Ok(r)) = (HeaderValue::try_from(policy), HeaderValue::try_from(state)) {
                put("ratelimit-policy", p);
                put("ratelimit", r);
            }
        }
        HeaderFamily::None => {}
    }
}

/// Adds what the mock received as a body, so tests can check nothing was altered on the way.
pub(crate) fn add_digest(headers: &mut HeaderMap, bytes: u64, sha256_hex: &str) {
    headers.insert(RECEIVED_BYTES, HeaderValue::from(bytes));
    if let Ok(v) = HeaderValue::from_str(sha256_hex) {
        headers.insert(RECEIVED_SHA256, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::{advertised, Family};

    /// Every family the mock sends reads back, through pacer's own parser, as the same numbers.
    #[test]
    fn every_family_reads_back() {
        let status = RateStatus {
            count: 12,
            allowed: 30,
            reset_secs: 4,
            window_secs: 6,
        };
        let cases = [
            (HeaderFamily::Genesys, Family::Genesys, None),
            (HeaderFamily::X, Family::X, None),
            (HeaderFamily::Ietf, Family::Ietf, None),
            (
                HeaderFamily::IetfStructured,
                Family::IetfStructured,
                Some(6),
            ),
        ];
        for (sent, family, window) in cases {
            let mut headers = HeaderMap::new();
            add_rate_status(&mut headers, Some(status), sent);
            let a = advertised(&headers, SystemTime::now()).expect("headers sent");
            assert_eq!(a.family, family);
            assert_eq!((a.quota, a.remaining), (Some(30), Some(18)), "{sent:?}");
            assert_eq!(a.reset, Some(Duration::from_secs(4)));
            assert_eq!(a.window, window.map(Duration::from_secs));
        }
        let mut headers = HeaderMap::new();
        add_rate_status(&mut headers, Some(status), HeaderFamily::None);
        assert!(headers.is_empty());
    }
}
