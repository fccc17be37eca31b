//! The plain-number families: Genesys `inin-ratelimit-*`, IETF `RateLimit-*` (first generation)
//! and `X-RateLimit-*`.

use std::time::{Duration, SystemTime};

use http::header::HeaderName;
use http::HeaderMap;

use super::structured::first_policy;
use super::{Advertised, Family};
use crate::ratelimit::retry_after::{
    digits, parse_delta, parse_reset, single, text, ININ_RATELIMIT_RESET, X_RATELIMIT_RESET,
};

const ININ_ALLOWED: HeaderName = HeaderName::from_static("inin-ratelimit-allowed");
const ININ_COUNT: HeaderName = HeaderName::from_static("inin-ratelimit-count");
const RL_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const RL_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RL_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
const X_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const X_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");

/// `inin-ratelimit-allowed/count/reset`. Remaining is allowed less count, and 0 when the count
/// is above what is allowed (the window is spent whatever the numbers say).
pub fn genesys(headers: &HeaderMap) -> Option<Advertised> {
    let quota = count(headers, &ININ_ALLOWED);
    let used = count(headers, &ININ_COUNT);
    Advertised {
        quota,
        remaining: quota.zip(used).map(|(q, u)| q.saturating_sub(u)),
        reset: single(headers, &ININ_RATELIMIT_RESET).and_then(parse_delta),
        ..Advertised::empty(Family::Genesys)
    }
    .nonempty()
}

/// `RateLimit-Limit` (a number, or a list `10, 10;w=1` whose first member is the quota and
/// window in force), `RateLimit-Remaining`, `RateLimit-Reset` (delta seconds).
pub fn ietf(headers: &HeaderMap) -> Option<Advertised> {
    let (quota, window) = match single(headers, &RL_LIMIT) {
        Some(v) => first_policy(v.as_bytes()),
        None => (None, None),
    };
    Advertised {
        quota,
        window,
        remaining: count(headers, &RL_REMAINING),
        reset: single(headers, &RL_RESET).and_then(parse_delta),
        ..Advertised::empty(Family::Ietf)
    }
    .nonempty()
}

/// `X-RateLimit-Limit/Remaining/Reset`; the reset is delta seconds or a Unix time.
pub fn x_ratelimit(headers: &HeaderMap, now: SystemTime) -> Option<Advertised> {
    Advertised {
        quota: count(headers, &X_LIMIT),
        remaining: count(headers, &X_REMAINING),
        reset: single(headers, &X_RATELIMIT_RESET).and_then(|v| parse_reset(v, now)),
        ..Advertised::empty(Family::X)
    }
    .nonempty()
}

/// A count: ASCII digits only (spaces around allowed), fitting `u32`.
fn count(headers: &HeaderMap, name: &HeaderName) -> Option<u32> {
    let n = digits(text(single(headers, name)?)?)??;
    u32::try_from(n).ok()
}

/// Seconds as a window, within the cap that bounds every wait read from a header.
pub(super) fn window_secs(secs: i64) -> Option<Duration> {
    let secs = u64::try_from(secs).ok().filter(|&s| s > 0)?;
    let window = Duration::from_secs(secs);
    (window <= crate::ratelimit::retry_after::RETRY_AFTER_CAP).then_some(window)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, http::HeaderValue::from_static(v));
        }
        h
    }

    const NOW: u64 = 1_700_000_000;

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(NOW)
    }

    #[test]
    fn genesys_reads_quota_remaining_and_reset() {
        let h = headers(&[
            ("inin-ratelimit-allowed", "300"),
            ("inin-ratelimit-count", "260"),
            ("inin-ratelimit-reset", "41"),
        ]);
        let a = genesys(&h).unwrap();
        assert_eq!(a.quota, Some(300));
        assert_eq!(a.remaining, Some(40));
        assert_eq!(a.reset, Some(Duration::from_secs(41)));
        assert_eq!(a.window, None);
    }

    #[test]
    fn genesys_count_above_allowed_is_a_spent_window() {
        let h = headers(&[
            ("inin-ratelimit-allowed", "300"),
            ("inin-ratelimit-count", "301"),
        ]);
        assert_eq!(genesys(&h).unwrap().remaining, Some(0));
    }

    #[test]
    fn genesys_garbage_counts_as_absent() {
        for bad in ["-1", "+5", "1.5", "soon", "", "99999999999", "5s"] {
            let mut h = HeaderMap::new();
            h.insert(ININ_ALLOWED, http::HeaderValue::from_str(bad).unwrap());
            h.insert(ININ_COUNT, http::HeaderValue::from_static("3"));
            h.insert(
                ININ_RATELIMIT_RESET,
                http::HeaderValue::from_str(bad).unwrap(),
            );
            assert_eq!(genesys(&h), None, "{bad:?}");
        }
        // Two lines of one header: which one would count?
        let h = headers(&[("inin-ratelimit-reset", "5"), ("inin-ratelimit-reset", "7")]);
        assert_eq!(genesys(&h), None);
    }

    #[test]
    fn ietf_first_generation_reads_number_or_list() {
        let h = headers(&[
            ("ratelimit-limit", "100"),
            ("ratelimit-remaining", "40"),
            ("ratelimit-reset", "12"),
        ]);
        let a = ietf(&h).unwrap();
        assert_eq!(
            (a.quota, a.window, a.remaining),
            (Some(100), None, Some(40))
        );
        assert_eq!(a.reset, Some(Duration::from_secs(12)));
        let h = headers(&[("ratelimit-limit", "10, 10;w=1, 50;w=60")]);
        let a = ietf(&h).unwrap();
        assert_eq!(
            (a.quota, a.window),
            (Some(10), Some(Duration::from_secs(1)))
        );
        let h = headers(&[("ratelimit-limit", "ten"), ("ratelimit-reset", "-3")]);
        assert_eq!(ietf(&h), None);
    }

    #[test]
    fn x_ratelimit_reset_is_delta_or_unix_time() {
        let h = headers(&[
            ("x-ratelimit-limit", "60"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "30"),
        ]);
        let a = x_ratelimit(&h, now()).unwrap();
        assert_eq!((a.quota, a.remaining), (Some(60), Some(0)));
        assert_eq!(a.reset, Some(Duration::from_secs(30)));
        let mut h = HeaderMap::new();
        h.insert(X_RATELIMIT_RESET, http::HeaderValue::from(NOW + 45));
        assert_eq!(
            x_ratelimit(&h, now()).unwrap().reset,
            Some(Duration::from_secs(45))
        );
        // A Unix time in the past resets now; a huge one is garbage.
        h.insert(X_RATELIMIT_RESET, http::HeaderValue::from(NOW - 45));
        assert_eq!(x_ratelimit(&h, now()).unwrap().reset, Some(Duration::ZERO));
        h.insert(X_RATELIMIT_RESET, http::HeaderValue::from(u64::MAX));
        assert_eq!(x_ratelimit(&h, now()), None);
    }

    #[test]
    fn families_are_not_mixed_and_genesys_goes_first() {
        let h = headers(&[
            ("x-ratelimit-remaining", "7"),
            ("inin-ratelimit-allowed", "300"),
        ]);
        let a = super::super::advertised(&h, now()).unwrap();
        assert_eq!(a.family, Family::Genesys);
        assert_eq!(a.remaining, None);
        assert_eq!(super::super::advertised(&HeaderMap::new(), now()), None);
    }
}
