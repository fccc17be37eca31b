//! What one group of requests showed: counts, advertised budgets, Retry-After values, the
//! concurrency at which 429s came, and the runs of accepted requests between 429s.

use std::time::Duration;

use http::{HeaderMap, StatusCode};
use tokio::time::Instant;

use crate::exchange::RetryAfterUnit;
use crate::ratelimit::{Advertised, Family};

/// In-flight levels counted one by one up to here; higher ones share the last bucket.
pub(super) const LEVELS: usize = 64;

/// Runs and the intervals between their starts kept for the medians: the most recent ones.
const KEPT: usize = 32;

/// One group's observations. Everything is a counter, a min/max, or a bounded list.
#[derive(Debug, Clone, Default)]
pub(super) struct Tally {
    pub requests: u64,
    pub ok: u64,
    pub throttled: u64,
    /// Requests that carried `Authorization`: a budget they advertise is the caller's.
    pub with_token: u64,
    pub first_sent: Option<Instant>,
    pub last_answer: Option<Instant>,
    pub in_flight: u32,
    pub max_in_flight: u32,
    /// Accepted (2xx) and refused (429) answers by the in-flight level (this request
    /// included) at which the request was sent.
    pub ok_levels: Vec<u64>,
    pub throttled_levels: Vec<u64>,
    pub in_flight_at_first_429: Option<u32>,
    pub advertised: Option<Seen>,
    pub retry_after: Option<(Duration, Duration, u64)>,
    pub runs: Runs,
}

/// What an answer's head says, read before its group's lock is taken.
#[derive(Debug, Clone, Copy)]
pub(super) struct Answer {
    pub status: StatusCode,
    pub advertised: Option<Advertised>,
    /// The `Retry-After` of a 429.
    pub retry_after: Option<Duration>,
}

impl Answer {
    /// `unit` is what the upstream's `Retry-After` numbers count, read as the retry layer
    /// reads them.
    pub fn read(status: StatusCode, headers: &HeaderMap, unit: RetryAfterUnit) -> Answer {
        let now = std::time::SystemTime::now();
        let retry_after = (status == StatusCode::TOO_MANY_REQUESTS)
            .then(|| crate::ratelimit::retry_after::retry_after_in(headers, now, unit))
            .flatten();
        Answer {
            status,
            advertised: crate::ratelimit::advertised(headers, now),
            retry_after,
        }
    }
}

/// The rate-limit headers' readings, folded.
#[derive(Debug, Clone, Copy)]
pub(super) struct Seen {
    pub family: Family,
    /// The largest quota advertised (a lower one is a burst policy or a lie; the highest is
    /// the one that held when the window was fresh).
    pub quota: Option<u32>,
    pub window: Option<Duration>,
    /// The longest reset: right after a window opens, the reset is the window.
    pub longest_reset: Option<Duration>,
    pub lowest_remaining: Option<u32>,
}

/// Runs of accepted answers between 429s: against a fixed window, each run after a 429 starts
/// when the window resets and holds the window's quota.
#[derive(Debug, Clone, Default)]
pub(super) struct Runs {
    /// Accepted answers since the last 429.
    current: u32,
    /// Whether the current run began after a 429 (a run before the first one is not whole).
    after_429: bool,
    last_start: Option<Instant>,
    /// Lengths of whole runs (a 429 before and after).
    pub lengths: Vec<u32>,
    /// Time between the starts of consecutive runs that began after a 429.
    pub intervals: Vec<Duration>,
}

// === impl Tally ===

impl Tally {
    /// A request goes upstream; returns its in-flight level, this request included.
    pub fn sent(&mut self, now: Instant, token: bool) -> u32 {
        self.requests += 1;
        self.with_token += u64::from(token);
        self.first_sent.get_or_insert(now);
        self.in_flight += 1;
        self.max_in_flight = self.max_in_flight.max(self.in_flight);
        self.in_flight
    }

    /// The request sent at `level` is over, answered or not.
    pub fn done(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// An answer came for the request sent at `level`.
    pub fn answered(&mut self, answer: &Answer, level: u32, now: Instant) {
        self.last_answer = Some(now);
        if let Some(a) = &answer.advertised {
            self.advertise(a);
        }
        let bucket = (level as usize).min(LEVELS - 1);
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            self.throttled += 1;
            bump(&mut self.throttled_levels, bucket);
            self.in_flight_at_first_429.get_or_insert(level - 1);
            if let Some(w) = answer.retry_after {
                self.retry_after = Some(match self.retry_after {
                    Some((lo, hi, n)) => (lo.min(w), hi.max(w), n + 1),
                    None => (w, w, 1),
                });
            }
            self.runs.refused();
        } else if answer.status.is_success() {
            self.ok += 1;
            bump(&mut self.ok_levels, bucket);
            self.runs.accepted(now);
        }
    }

    fn advertise(&mut self, a: &Advertised) {
        let max = |x: Option<u32>, y: Option<u32>| x.max(y);
        let seen = self.advertised.get_or_insert(Seen {
            family: a.family,
            quota: None,
            window: None,
            longest_reset: None,
            lowest_remaining: None,
        });
        seen.family = a.family;
        seen.quota = max(seen.quota, a.quota);
        seen.window = seen.window.max(a.window);
        seen.longest_reset = seen.longest_reset.max(a.reset);
        seen.lowest_remaining = match (seen.lowest_remaining, a.remaining) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
    }

    /// Accepted answers per second between the first request sent and the last answer.
    pub fn rate_achieved(&self) -> Option<f64> {
        let span = self.last_answer?.checked_duration_since(self.first_sent?)?;
        (!span.is_zero()).then(|| self.ok as f64 / span.as_secs_f64())
    }

    /// The lowest in-flight level (this request included) at which a 429 came.
    pub fn lowest_throttled_level(&self) -> Option<u32> {
        self.throttled_levels
            .iter()
            .position(|&n| n > 0)
            .map(|i| i as u32)
    }

    /// Accepted answers sent at `level` or above.
    pub fn ok_at_or_above(&self, level: u32) -> u64 {
        self.ok_levels.iter().skip(level as usize).sum()
    }
}

fn bump(levels: &mut Vec<u64>, bucket: usize) {
    if levels.len() <= bucket {
        levels.resize(bucket + 1, 0);
    }
    levels[bucket] += 1;
}

// === impl Runs ===

impl Runs {
    fn accepted(&mut self, now: Instant) {
        if self.current == 0 && self.after_429 {
            if let Some(prev) = self.last_start {
                keep(&mut self.intervals, now.saturating_duration_since(prev));
            }
            self.last_start = Some(now);
        }
        self.current += 1;
    }

    fn refused(&mut self) {
        if self.current > 0 && self.after_429 {
            keep(&mut self.lengths, self.current);
        }
        self.current = 0;
        self.after_429 = true;
    }
}

fn keep<T>(list: &mut Vec<T>, value: T) {
    if list.len() == KEPT {
        list.remove(0);
    }
    list.push(value);
}

/// The middle value (the upper one of an even count).
pub(super) fn median<T: Copy + Ord>(values: &[T]) -> Option<T> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn runs_between_429s_give_quota_and_window() {
        let mut t = Tally::default();
        let h = HeaderMap::new();
        let start = Instant::now();
        // Three windows of 6 s, 12 accepted then refused, 4 requests a second.
        for i in 0..72u32 {
            let now = start + Duration::from_millis(250) * i;
            let in_window = i % 24;
            let status = if in_window < 12 {
                StatusCode::OK
            } else {
                StatusCode::TOO_MANY_REQUESTS
            };
            let level = t.sent(now, false);
            t.answered(
                &Answer::read(status, &h, RetryAfterUnit::Seconds),
                level,
                now,
            );
            t.done();
        }
        assert_eq!(t.runs.lengths, vec![12, 12]);
        assert_eq!(median(&t.runs.intervals), Some(Duration::from_secs(6)));
        assert_eq!(t.in_flight_at_first_429, Some(0));
    }

    #[test]
    fn retry_after_is_read_in_the_upstreams_unit() {
        let mut h = HeaderMap::new();
        h.insert(http::header::RETRY_AFTER, "1000".parse().unwrap());
        let read = |unit| Answer::read(StatusCode::TOO_MANY_REQUESTS, &h, unit).retry_after;
        assert_eq!(
            read(RetryAfterUnit::Seconds),
            Some(Duration::from_secs(1000))
        );
        assert_eq!(
            read(RetryAfterUnit::Milliseconds),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn median_takes_the_middle() {
        assert_eq!(median(&[3, 1, 2]), Some(2));
        assert_eq!(median::<u32>(&[]), None);
    }
}
