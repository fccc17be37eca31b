//! What an API says about its own limits on every response: the rate-limit header families,
//! read into one [`Advertised`] value for the limiters that learn from it (`learn: true`) and
//! for discovery.
//!
//! # Families, in the order they are tried
//!
//! 1. Genesys Cloud: `inin-ratelimit-allowed` (the quota), `inin-ratelimit-count` (used in the
//!    current window), `inin-ratelimit-reset` (seconds until the window resets).
//! 2. IETF structured (draft-ietf-httpapi-ratelimit-headers, 2023 on):
//!    `RateLimit-Policy: "name";q=100;w=60` and `RateLimit: "name";r=40;t=12`, several policies
//!    in one field; the tightest one (lowest remaining, then lowest quota per second) wins.
//! 3. IETF, first generation: `RateLimit-Limit` (a number, or a list whose first member is the
//!    quota and whose `w` parameter is the window), `RateLimit-Remaining`, `RateLimit-Reset`.
//! 4. `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (delta seconds or a Unix
//!    time, told apart as [`crate::ratelimit::retry_after`] does).
//!
//! The first family with any usable field wins; fields are not mixed across families.
//!
//! # Garbage
//!
//! Every field is read on its own, and a field that does not parse counts as absent: a sign, a
//! fraction, text, several header lines, a number above `u32` for counts, a reset above
//! [`crate::ratelimit::retry_after::RETRY_AFTER_CAP`]. Nothing here panics on any input (a fuzz target checks).

mod headers;
pub mod retry_after;
mod structured;

use std::time::{Duration, SystemTime};

use http::HeaderMap;
use serde::Serialize;

pub use self::headers::{genesys, ietf, x_ratelimit};
pub use self::structured::ietf_structured;

/// Which header family an [`Advertised`] was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// `inin-ratelimit-*`
    Genesys,
    /// `RateLimit-Policy` and `RateLimit`
    IetfStructured,
    /// `RateLimit-Limit`, `-Remaining`, `-Reset`
    Ietf,
    /// `X-RateLimit-*`
    X,
}

/// What one response said about the limit it counted against. Any field may be absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advertised {
    pub family: Family,
    /// Requests allowed per window.
    pub quota: Option<u32>,
    /// The window's length, when the family says it (only the IETF ones do).
    pub window: Option<Duration>,
    /// Requests still allowed in the current window after this response's own.
    pub remaining: Option<u32>,
    /// Time from the response until the window resets.
    pub reset: Option<Duration>,
}

// === impl Family ===

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Genesys => "inin-ratelimit-*",
            Family::IetfStructured => "RateLimit-Policy/RateLimit",
            Family::Ietf => "RateLimit-*",
            Family::X => "X-RateLimit-*",
        }
    }
}

// === impl Advertised ===

impl Advertised {
    /// An empty reading of `family`, for the parsers to fill in.
    pub(crate) fn empty(family: Family) -> Advertised {
        Advertised {
            family,
            quota: None,
            window: None,
            remaining: None,
            reset: None,
        }
    }

    /// Whether any field was readable.
    pub fn is_empty(&self) -> bool {
        self.quota.is_none()
            && self.window.is_none()
            && self.remaining.is_none()
            && self.reset.is_none()
    }

    /// `Some(self)` unless empty.
    fn nonempty(self) -> Option<Advertised> {
        (!self.is_empty()).then_some(self)
    }
}

/// What the response's headers advertise, from the first family with any usable field; `None`
/// when no family has one. `now` reads Unix-time resets.
pub fn advertised(headers: &HeaderMap, now: SystemTime) -> Option<Advertised> {
    genesys(headers)
        .or_else(|| ietf_structured(headers))
        .or_else(|| ietf(headers))
        .or_else(|| x_ratelimit(headers, now))
}

// === fuzzing ===

/// The body of the `ratelimit_headers` fuzz target, shared with the stable smoke test.
///
/// Input layout: byte 0 picks one of the eleven header names, byte 1 a second one; the rest is
/// split at the first `\n` into their two raw values. Checks: no panic, counts fit `u32` (by
/// type), no reset above the cap, and the remaining of a Genesys reading never above its quota.
#[doc(hidden)]
pub fn fuzz_entry(data: &[u8]) {
    const NAMES: [&str; 11] = [
        "inin-ratelimit-allowed",
        "inin-ratelimit-count",
        "inin-ratelimit-reset",
        "ratelimit-policy",
        "ratelimit",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ];
    let [a, b, rest @ ..] = data else { return };
    let mut parts = rest.splitn(2, |&c| c == b'\n');
    let mut headers = HeaderMap::new();
    for (pick, part) in [a, b].into_iter().zip(parts.by_ref()) {
        let name = NAMES[usize::from(*pick) % NAMES.len()];
        if let Ok(value) = http::HeaderValue::from_bytes(part) {
            headers.append(name, value);
        }
    }
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    for reading in [
        genesys(&headers),
        ietf_structured(&headers),
        ietf(&headers),
        x_ratelimit(&headers, now),
        advertised(&headers, now),
    ]
    .into_iter()
    .flatten()
    {
        assert!(reading
            .reset
            .is_none_or(|r| r <= crate::ratelimit::retry_after::RETRY_AFTER_CAP));
        assert!(reading
            .window
            .is_none_or(|w| w <= crate::ratelimit::retry_after::RETRY_AFTER_CAP));
        if let (Family::Genesys, Some(q), Some(r)) =
            (reading.family, reading.quota, reading.remaining)
        {
            assert!(r <= q, "remaining {r} above quota {q}");
        }
    }
}
