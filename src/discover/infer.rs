//! From what a group showed to a limit pacer can enforce, and the reason, in words, for the
//! comment the written config carries.
//!
//! In order of trust:
//! 1. **Advertised**: a quota in the rate-limit headers, with the window the headers name
//!    (IETF) or, when they only count down (`inin-ratelimit-reset`, `X-RateLimit-Reset`), the
//!    longest reset seen, which is the window as it opens. Written as `quota: N/W`, keyed by
//!    token when the requests carried one (the headers describe the caller's budget).
//! 2. **Concurrency**: no 429 came with fewer than some number of requests in flight, and most
//!    2xx did. The cap is one less than the in-flight count of the lowest 429. 2xx at or above
//!    that count are allowed (a minority): pacer counts a request in flight until its answer
//!    arrives, a moment after the API stopped counting it, so a request sent in that moment
//!    reads one higher here than at the API. Against a rate limit, 429s come at every in-flight
//!    count the 2xx do.
//! 3. **Runs between 429s**: an API that only says Retry-After, counting fixed windows, accepts
//!    its quota after each reset and refuses the rest: the median run of 2xx between 429s is the
//!    quota and the median time between the runs' starts is the window (to the whole second).
//! 4. **Achieved rate**: 429s without whole runs (a bucket refilling one request at a time):
//!    the 2xx rate achieved, written as `rate:`.

use std::time::Duration;

use serde::Serialize;

use super::tally::{median, Tally};

/// A limit discovered for one group.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// `quota: N/W`.
    Quota {
        count: u32,
        #[serde(rename = "window_s")]
        window_secs: u64,
    },
    Concurrency(u32),
    /// `rate: N/s`, in requests per second.
    Rate(f64),
}

/// Where a finding came from, in the order of trust above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Advertised,
    Concurrency,
    Runs,
    Achieved,
}

/// A discovered limit, how it is keyed, and what it was learned from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub limit: Limit,
    pub source: Source,
    /// `token` or `global`.
    pub key: &'static str,
    pub from: String,
}

// === impl Limit ===

impl Limit {
    /// The limit's fields in config syntax.
    pub fn yaml(&self) -> String {
        match self {
            Limit::Quota { count, window_secs } => format!("quota: {count}/{window_secs}s"),
            Limit::Concurrency(n) => format!("concurrency: {n}"),
            // Whole requests per minute: the config's rates are integers.
            Limit::Rate(per_sec) => format!("rate: {}/min", (per_sec * 60.0).floor().max(1.0)),
        }
    }
}

/// What `t` says the group's limit is, if anything.
pub(super) fn infer(t: &Tally) -> Option<Finding> {
    advertised(t)
        .or_else(|| concurrency(t))
        .or_else(|| runs(t))
        .or_else(|| achieved(t))
}

fn advertised(t: &Tally) -> Option<Finding> {
    let seen = t.advertised?;
    let count = seen.quota?;
    let (window, how) = match (seen.window, seen.longest_reset) {
        (Some(w), _) => (w, "window"),
        (None, Some(r)) => (r, "longest reset"),
        (None, None) => return None,
    };
    let window_secs = whole_secs(window);
    let key = if t.with_token > 0 { "token" } else { "global" };
    Some(Finding {
        source: Source::Advertised,
        limit: Limit::Quota { count, window_secs },
        key,
        from: format!(
            "quota from {} (quota {count}, {how} {window_secs}s, lowest remaining {})",
            seen.family.as_str(),
            seen.lowest_remaining
                .map_or_else(|| "not sent".into(), |r| r.to_string())
        ),
    })
}

fn concurrency(t: &Tally) -> Option<Finding> {
    let level = t.lowest_throttled_level()?;
    let cap = level.checked_sub(1).filter(|&c| c > 0)?;
    let racing = t.ok_at_or_above(level);
    if t.ok - racing <= racing {
        return None;
    }
    Some(Finding {
        source: Source::Concurrency,
        limit: Limit::Concurrency(cap),
        key: "global",
        from: format!(
            "concurrency from in-flight at the first 429s (none with fewer than {cap} others in flight; {} of {} 2xx with at most {cap})",
            t.ok - racing,
            t.ok
        ),
    })
}

fn runs(t: &Tally) -> Option<Finding> {
    let count = median(&t.runs.lengths)?;
    let window = median(&t.runs.intervals)?;
    let window_secs = whole_secs_nearest(window)?;
    Some(Finding {
        source: Source::Runs,
        limit: Limit::Quota { count, window_secs },
        key: "global",
        from: format!(
            "quota from Retry-After only: {count} accepted between 429s ({} runs), a run every {window_secs}s{}",
            t.runs.lengths.len(),
            retry_after_words(t)
        ),
    })
}

fn achieved(t: &Tally) -> Option<Finding> {
    if t.throttled == 0 {
        return None;
    }
    let rate = t.rate_achieved()?;
    Some(Finding {
        source: Source::Achieved,
        limit: Limit::Rate(rate),
        key: "global",
        from: format!(
            "a rate from Retry-After only: {rate:.2}/s achieved with {} 429s{}",
            t.throttled,
            retry_after_words(t)
        ),
    })
}

fn retry_after_words(t: &Tally) -> String {
    match t.retry_after {
        Some((lo, hi, _)) => format!(", Retry-After {}-{}s", lo.as_secs(), hi.as_secs()),
        None => String::new(),
    }
}

/// Up to the whole second: a window read from a countdown is never longer than it says.
fn whole_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// To the nearest whole second, at least one: run starts land a request's gap after a reset.
fn whole_secs_nearest(d: Duration) -> Option<u64> {
    let secs = d.as_secs_f64().round() as u64;
    (secs > 0).then_some(secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::tally::Answer;
    use crate::exchange::RetryAfterUnit;
    use http::{HeaderMap, StatusCode};
    use tokio::time::Instant;

    fn answer(t: &mut Tally, status: u16, level: u32) {
        let now = Instant::now();
        let status = StatusCode::from_u16(status).unwrap();
        t.answered(
            &Answer::read(status, &HeaderMap::new(), RetryAfterUnit::Seconds),
            level,
            now,
        );
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_when_429s_come_only_above_the_2xx() {
        let mut t = Tally::default();
        for level in 1..=4 {
            for _ in 0..10 {
                answer(&mut t, 200, level);
            }
        }
        for level in 5..=8 {
            answer(&mut t, 429, level);
        }
        let f = infer(&t).unwrap();
        assert_eq!(f.limit, Limit::Concurrency(4));
        // A few 2xx above the lowest 429's level: answers on their way back.
        for _ in 0..10 {
            answer(&mut t, 200, 6);
        }
        assert_eq!(infer(&t).unwrap().limit, Limit::Concurrency(4));
        // As many 2xx above it as below: a rate limit, not a cap.
        for _ in 0..30 {
            answer(&mut t, 200, 7);
        }
        assert_ne!(infer(&t).map(|f| f.limit), Some(Limit::Concurrency(4)));
    }

    #[tokio::test(start_paused = true)]
    async fn advertised_quota_window_from_the_longest_reset() {
        let mut t = Tally::default();
        let mut h = HeaderMap::new();
        h.insert("inin-ratelimit-allowed", "30".parse().unwrap());
        h.insert("inin-ratelimit-count", "1".parse().unwrap());
        h.insert("inin-ratelimit-reset", "6".parse().unwrap());
        let level = t.sent(Instant::now(), true);
        t.answered(
            &Answer::read(StatusCode::OK, &h, RetryAfterUnit::Seconds),
            level,
            Instant::now(),
        );
        h.insert("inin-ratelimit-reset", "2".parse().unwrap());
        h.insert("inin-ratelimit-count", "30".parse().unwrap());
        t.answered(
            &Answer::read(StatusCode::OK, &h, RetryAfterUnit::Seconds),
            level,
            Instant::now(),
        );
        let f = infer(&t).unwrap();
        assert_eq!(
            f.limit,
            Limit::Quota {
                count: 30,
                window_secs: 6
            }
        );
        assert_eq!(f.key, "token");
        assert!(f.from.contains("inin-ratelimit-*"), "{}", f.from);
        assert!(f.from.contains("lowest remaining 0"), "{}", f.from);
    }

    #[test]
    fn nothing_seen_nothing_found() {
        assert_eq!(infer(&Tally::default()), None);
        assert_eq!(Limit::Rate(2.0).yaml(), "rate: 120/min");
    }
}
