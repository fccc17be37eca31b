//! How long the upstream asked us to wait before trying again.
//!
//! # Headers, in order
//!
//! 1. `Retry-After` (RFC 9110 §10.2.3): delta-seconds (`1*DIGIT`) or an HTTP-date in any of the
//!    three forms httpdate accepts (IMF-fixdate, RFC 850, asctime). A date in the past means zero.
//! 2. `inin-ratelimit-reset`: the legacy Genesys header, seconds until the limit resets.
//! 3. `X-RateLimit-Reset`: seconds until reset, or, when the number is above
//!    [`EPOCH_THRESHOLD`], a Unix timestamp in seconds (a date in the past means zero).
//!
//! The first header that is *usable* wins. A garbled `Retry-After` therefore falls back to the
//! legacy headers instead of hiding them: they come from the same server about the same limit, and
//! a real wait, even from an older header, beats guessing with backoff. When none is usable the
//! result is `None` and the caller falls back to [`super::backoff`].
//!
//! # What counts as garbage (treated like an absent header)
//!
//! - several values: two header lines, or a comma list (`5, 10`), since we cannot know which one
//!   the server meant;
//! - empty, non-ASCII, a sign (`-1`, `+5`), a fraction (`1.5`), units (`5s`), any other text:
//!   Genesys sends whole seconds and RFC 9110 allows only digits, so a fraction is a broken sender,
//!   not a precision we should honour;
//! - numbers that overflow `u64`, and waits above [`RETRY_AFTER_CAP`] (one day), whether given as
//!   seconds or as a date. The cap only rejects absurd values: a plausible long wait such as
//!   `3600` is returned as is, and the caller hands it back to the client because it exceeds
//!   `retry.max_retry_after`;
//! - for `X-RateLimit-Reset`, numbers above the cap but not above [`EPOCH_THRESHOLD`] (too long
//!   for a delta, too early for a timestamp), and timestamps in milliseconds (they land tens of
//!   thousands of years ahead, far past the cap).
//!
//! Leading zeros (`007`) and surrounding spaces or tabs are accepted: both are valid HTTP.
//! Nothing here panics on any input; a cargo-fuzz target and property tests check that.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{HeaderName, RETRY_AFTER};
use http::{HeaderMap, HeaderValue};

/// The longest wait taken from a header; anything longer is garbage.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(86_400);

/// An `X-RateLimit-Reset` above this (2001-09-09 as a timestamp) is a Unix time, not a delta.
pub const EPOCH_THRESHOLD: u64 = 1_000_000_000;

/// The legacy Genesys Cloud header: seconds until the rate limit resets.
pub const ININ_RATELIMIT_RESET: HeaderName = HeaderName::from_static("inin-ratelimit-reset");

/// The common de-facto header: seconds until reset, or the reset time as a Unix timestamp.
pub const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// The server's requested wait, from the first usable header (see the module docs), or `None`.
///
/// `Some(Duration::ZERO)` means "now" (a delta of 0, or a date already past). The result is never
/// above [`RETRY_AFTER_CAP`].
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    retry_after_with_source(headers, now).map(|(wait, _)| wait)
}

/// Like [`retry_after`], for an upstream whose `Retry-After` numbers count `unit`: an API that
/// sends milliseconds (`Retry-After: 1000` for one second) is read as it means. Only the number
/// form changes; dates and the other headers read as always.
pub fn retry_after_in(
    headers: &HeaderMap,
    now: SystemTime,
    unit: crate::config::RetryAfterUnit,
) -> Option<Duration> {
    if unit == crate::config::RetryAfterUnit::Milliseconds {
        let millis = single(headers, &RETRY_AFTER)
            .and_then(text)
            .and_then(digits)
            .flatten()
            .map(Duration::from_millis)
            .filter(|&wait| wait <= RETRY_AFTER_CAP);
        if millis.is_some() {
            return millis;
        }
    }
    retry_after(headers, now)
}

/// Like [`retry_after`], also telling which header the wait came from (for logs and metrics).
pub fn retry_after_with_source(headers: &HeaderMap, now: SystemTime) -> Option<(Duration, Source)> {
    let retry_after = single(headers, &RETRY_AFTER)
        .and_then(|v| parse_retry_after(v, now))
        .map(|wait| (wait, Source::RetryAfter));
    retry_after
        .or_else(|| {
            single(headers, &ININ_RATELIMIT_RESET)
                .and_then(parse_delta)
                .map(|wait| (wait, Source::IninRateLimitReset))
        })
        .or_else(|| {
            single(headers, &X_RATELIMIT_RESET)
                .and_then(|v| parse_reset(v, now))
                .map(|wait| (wait, Source::XRateLimitReset))
        })
}

/// One `Retry-After` value: delta-seconds or HTTP-date.
pub fn parse_retry_after(value: &HeaderValue, now: SystemTime) -> Option<Duration> {
    let text = text(value)?;
    if let Some(secs) = digits(text) {
        return capped(secs?);
    }
    // httpdate rejects trailing text, so a comma list of dates fails here as a whole.
    let date = httpdate::parse_http_date(text).ok()?;
    until(date, now)
}

/// One `inin-ratelimit-reset` value: delta-seconds only.
pub fn parse_delta(value: &HeaderValue) -> Option<Duration> {
    capped(digits(text(value)?)??)
}

/// One `X-RateLimit-Reset` value: delta-seconds, or a Unix timestamp above [`EPOCH_THRESHOLD`].
pub fn parse_reset(value: &HeaderValue, now: SystemTime) -> Option<Duration> {
    let secs = digits(text(value)?)??;
    if secs <= EPOCH_THRESHOLD {
        return capped(secs);
    }
    // checked: a huge number must not overflow SystemTime (that would panic).
    let at = UNIX_EPOCH.checked_add(Duration::from_secs(secs))?;
    until(at, now)
}

/// Which header a wait was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    RetryAfter,
    IninRateLimitReset,
    XRateLimitReset,
}

// === impl Source ===

impl Source {
    /// The header name, lower-case, for log fields and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::RetryAfter => "retry-after",
            Source::IninRateLimitReset => "inin-ratelimit-reset",
            Source::XRateLimitReset => "x-ratelimit-reset",
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

// === helpers ===

/// The header's only value; `None` when absent or sent more than once.
pub(super) fn single<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a HeaderValue> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    values.next().is_none().then_some(first)
}

/// The value as ASCII text without surrounding whitespace; `None` when empty or not ASCII.
pub(super) fn text(value: &HeaderValue) -> Option<&str> {
    let text = value.to_str().ok()?.trim_matches([' ', '\t']);
    (!text.is_empty()).then_some(text)
}

/// `None` when `text` is not all digits; `Some(None)` when it is but overflows `u64`.
///
/// `str::parse::<u64>` alone would accept a leading `+`, which RFC 9110 does not.
pub(super) fn digits(text: &str) -> Option<Option<u64>> {
    text.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| text.parse().ok())
}

fn capped(secs: u64) -> Option<Duration> {
    let wait = Duration::from_secs(secs);
    (wait <= RETRY_AFTER_CAP).then_some(wait)
}

/// Time from `now` to `at`: zero when already past, `None` when beyond the cap.
fn until(at: SystemTime, now: SystemTime) -> Option<Duration> {
    let wait = at.duration_since(now).unwrap_or(Duration::ZERO);
    (wait <= RETRY_AFTER_CAP).then_some(wait)
}

// === fuzzing ===

/// The body of the `retry_after` fuzz target, shared with the stable-toolchain smoke test so both
/// check the same invariants.
///
/// Input layout: byte 0 chooses which headers are set (bits 0-2) and whether the first one is
/// sent twice (bit 3); bytes 1..9 choose `now` (before or after the epoch); the rest is split at
/// the first `\n` into two raw header values. Values `HeaderValue` rejects are skipped.
#[doc(hidden)]
pub fn fuzz_entry(data: &[u8]) {
    let (&flags, rest) = match data.split_first() {
        Some(split) => split,
        None => return,
    };
    let (now, rest) = fuzz_now(rest);
    let mut parts = rest.splitn(2, |&b| b == b'\n');
    let first = parts.next().and_then(|b| HeaderValue::from_bytes(b).ok());
    let second = parts.next().and_then(|b| HeaderValue::from_bytes(b).ok());

    for value in first.iter().chain(second.iter()) {
        check(parse_retry_after(value, now));
        check(parse_delta(value));
        check(parse_reset(value, now));
    }
    let Some(first) = first else { return };
    let mut headers = HeaderMap::new();
    let names = [RETRY_AFTER, ININ_RATELIMIT_RESET, X_RATELIMIT_RESET];
    for (i, name) in names.into_iter().enumerate() {
        if flags & (1 << i) != 0 {
            let value = second.clone().filter(|_| i > 0).unwrap_or(first.clone());
            headers.append(name, value);
        }
    }
    if flags & 0b1000 != 0 {
        if let Some(name) = headers.keys().next().cloned() {
            headers.append(name, second.unwrap_or(first));
        }
    }
    check(retry_after(&headers, now));
}

fn fuzz_now(rest: &[u8]) -> (SystemTime, &[u8]) {
    let Some((bytes, rest)) = rest.split_first_chunk::<8>() else {
        return (UNIX_EPOCH + Duration::from_secs(1_700_000_000), rest);
    };
    // About ±31,700 years around the epoch: both directions and far beyond any header's range.
    let offset = i64::from_le_bytes(*bytes) % 1_000_000_000_000;
    let delta = Duration::from_secs(offset.unsigned_abs());
    let now = if offset >= 0 {
        UNIX_EPOCH.checked_add(delta)
    } else {
        UNIX_EPOCH.checked_sub(delta)
    };
    (now.unwrap_or(UNIX_EPOCH), rest)
}

fn check(wait: Option<Duration>) {
    if let Some(wait) = wait {
        assert!(wait <= RETRY_AFTER_CAP, "wait {wait:?} above the cap");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
            map.append(name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn milliseconds_when_the_upstream_counts_them() {
        use crate::config::RetryAfterUnit::{Milliseconds, Seconds};
        let h = headers(&[("retry-after", "1000")]);
        let ms = Duration::from_millis;
        assert_eq!(retry_after_in(&h, at(0), Milliseconds), Some(ms(1000)));
        assert_eq!(retry_after_in(&h, at(0), Seconds), Some(ms(1_000_000)));
        // A date or another header reads as always.
        let h = headers(&[("retry-after", "soon"), ("inin-ratelimit-reset", "3")]);
        assert_eq!(retry_after_in(&h, at(0), Milliseconds), Some(ms(3000)));
    }

    fn wait(pairs: &[(&str, &str)]) -> Option<u64> {
        retry_after(&headers(pairs), at(1_700_000_000)).map(|d| d.as_secs())
    }

    #[test]
    fn delta_seconds() {
        assert_eq!(wait(&[("retry-after", "5")]), Some(5));
        assert_eq!(wait(&[("retry-after", "0")]), Some(0));
        assert_eq!(wait(&[("retry-after", "007")]), Some(7));
        assert_eq!(wait(&[("retry-after", " 3\t")]), Some(3));
        assert_eq!(wait(&[("retry-after", "3600")]), Some(3600));
        assert_eq!(wait(&[("retry-after", "86400")]), Some(86_400));
    }

    #[test]
    fn garbage_is_missing() {
        for bad in [
            "",
            " ",
            "-1",
            "+5",
            "1.5",
            "5s",
            "1e3",
            "5, 10",
            "five",
            "86401",
            "0x10",
            "18446744073709551616",
            "99999999999999999999999",
        ] {
            assert_eq!(wait(&[("retry-after", bad)]), None, "{bad:?}");
        }
        let non_ascii = HeaderValue::from_bytes(b"\xff5").unwrap();
        let mut map = HeaderMap::new();
        map.insert(RETRY_AFTER, non_ascii);
        assert_eq!(retry_after(&map, at(0)), None);
    }

    #[test]
    fn two_lines_are_garbage() {
        assert_eq!(wait(&[("retry-after", "5"), ("retry-after", "5")]), None);
    }

    #[test]
    fn http_dates_in_all_three_forms() {
        let now = at(784_111_777 - 30); // 30 s before Sun, 06 Nov 1994 08:49:37 GMT
        for date in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            let map = headers(&[("retry-after", date)]);
            assert_eq!(
                retry_after(&map, now),
                Some(Duration::from_secs(30)),
                "{date}"
            );
        }
    }

    #[test]
    fn past_date_is_zero_and_far_date_is_garbage() {
        let map = headers(&[("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT")]);
        assert_eq!(retry_after(&map, at(2_000_000_000)), Some(Duration::ZERO));
        assert_eq!(retry_after(&map, at(784_111_777 - 86_401)), None);
        let wrong_weekday = headers(&[("retry-after", "Mon, 06 Nov 1994 08:49:37 GMT")]);
        assert_eq!(retry_after(&wrong_weekday, at(784_111_700)), None);
    }

    #[test]
    fn fallback_order() {
        assert_eq!(wait(&[("inin-ratelimit-reset", "12")]), Some(12));
        assert_eq!(wait(&[("x-ratelimit-reset", "13")]), Some(13));
        let all = [
            ("retry-after", "1"),
            ("inin-ratelimit-reset", "2"),
            ("x-ratelimit-reset", "3"),
        ];
        assert_eq!(wait(&all), Some(1));
        assert_eq!(wait(&[("retry-after", "soon"), all[1], all[2]]), Some(2));
        assert_eq!(wait(&[all[0], all[0], all[1], all[2]]), Some(2));
        assert_eq!(wait(&[("inin-ratelimit-reset", "-2"), all[2]]), Some(3));
        assert_eq!(
            wait(&[("retry-after", "x"), ("x-ratelimit-reset", "y")]),
            None
        );
    }

    #[test]
    fn legacy_headers_take_whole_seconds_only() {
        assert_eq!(wait(&[("inin-ratelimit-reset", "1.5")]), None);
        assert_eq!(
            wait(&[("inin-ratelimit-reset", "Sun, 06 Nov 1994 08:49:37 GMT")]),
            None
        );
        assert_eq!(wait(&[("inin-ratelimit-reset", "1700000000")]), None);
    }

    #[test]
    fn x_ratelimit_reset_epoch() {
        let now = at(1_700_000_000);
        let reset = |v: &str| retry_after(&headers(&[("x-ratelimit-reset", v)]), now);
        assert_eq!(reset("1700000042"), Some(Duration::from_secs(42)));
        assert_eq!(reset("1600000000"), Some(Duration::ZERO));
        assert_eq!(reset("1000000000"), None); // not a timestamp, and far above the cap
        assert_eq!(reset("1800000000"), None); // a timestamp, but years away
        assert_eq!(reset("1700000000000"), None); // milliseconds
        assert_eq!(reset("18446744073709551615"), None); // must not overflow SystemTime
    }

    #[test]
    fn source_is_reported() {
        let map = headers(&[("retry-after", "?"), ("x-ratelimit-reset", "4")]);
        let (_, source) = retry_after_with_source(&map, at(0)).unwrap();
        assert_eq!(source, Source::XRateLimitReset);
        assert_eq!(source.as_str(), "x-ratelimit-reset");
    }

    #[test]
    fn fuzz_entry_handles_short_inputs() {
        for data in [
            &b""[..],
            b"\x0f",
            b"\x0f12345678",
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff5",
        ] {
            fuzz_entry(data);
        }
    }
}
