//! The GCRA arithmetic of shared rates. `gcra.lua` is a line-by-line copy that runs inside
//! Redis; [`cases`] are checked against both (here in unit tests, the script in
//! `tests/it/shared.rs` with a fixed clock), so the two cannot drift apart. GCRA's own rules are
//! `shape/gcra.rs`, shared with the local bucket.
//!
//! A key's bucket is its theoretical arrival time `tat` (when the bucket would be empty again)
//! and `pause` (the end of a Retry-After pause). All times are microseconds on Redis's clock.
//! With emission interval `T` and burst `B`, a request may go at the first instant `go` with
//! `go >= tat - (B-1)·T`, `go >= now` and `go >= pause`; reserving it moves `tat` to
//! `max(tat, now, go) + T`. Unlike a check-and-reject GCRA, a request that has to wait still
//! takes its place at once: that is what makes the order FIFO across instances.
//!
//! `T` is the base interval (the configured rate, or a live change stored in Redis) divided by
//! the AIMD share of an adaptive limit, also kept in Redis (`cut_to`, `cut_at`, `event_end`) so
//! that a 429 on one instance slows all of them, cutting once per congestion event as the local
//! limiter's AIMD does.

use crate::shape::gcra;

/// The script's operations, in the order of its `ARGV`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Reserve the earliest instant, unless it is more than `max_wait` away.
    Reserve { max_wait: u64 },
    /// Pause the key for `retry_after`, and restart it without a burst.
    Pause { retry_after: u64 },
    /// Give back the reservation that left `tat` at this value, if it is still the last one.
    Release { tat: u64 },
}

impl Op {
    /// The operation's name and argument as the scripts (gcra.lua, quota.lua) take them.
    pub fn script_args(self) -> (&'static str, u64) {
        match self {
            Op::Reserve { max_wait } => ("reserve", max_wait),
            Op::Pause { retry_after } => ("pause", retry_after),
            Op::Release { tat } => ("release", tat),
        }
    }
}

/// A key's bucket as stored in Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bucket {
    pub tat: u64,
    pub pause: u64,
}

/// The limit's parameters stored in Redis (the `params` hash); None where unset.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Live {
    pub interval: Option<u64>,
    pub burst: Option<u64>,
    pub cut_to: Option<f64>,
    pub cut_at: Option<u64>,
    /// When the congestion event of the last cut ends: 429s until then cut no further.
    pub event_end: Option<u64>,
}

/// An adaptive limit's AIMD settings; `every` is the clean interval in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aimd {
    pub factor: f64,
    pub floor: f64,
    pub step: f64,
    pub every: u64,
}

/// What the instance asks with: its configured interval and burst (used unless `Live` has
/// them) and AIMD settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    pub interval: u64,
    pub burst: u64,
    pub aimd: Option<Aimd>,
}

/// The share of the base rate in force at `now`: the last cut plus a step per clean interval.
pub fn share(now: u64, live: &Live, aimd: Option<Aimd>) -> f64 {
    let (Some(a), Some(cut_to), Some(cut_at)) = (aimd, live.cut_to, live.cut_at) else {
        return 1.0;
    };
    let steps = (now.saturating_sub(cut_at) / a.every.max(1)) as f64;
    (cut_to + steps * a.step).min(1.0)
}

/// The emission interval at `share` of the base rate.
pub fn effective(base: u64, share: f64) -> u64 {
    (base as f64 / share).floor() as u64
}

/// What the script answers: `{granted, wait, tat, interval, paused_for}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub granted: bool,
    /// How long from now the request may go.
    pub wait: u64,
    /// The bucket's `tat` afterwards.
    pub tat: u64,
    /// The emission interval in force (the live one when set).
    pub interval: u64,
    /// How much of a pause remains.
    pub paused_for: u64,
}

/// The scripts' reply as redis-rs reads it: `{granted, wait, tat, interval, paused_for}`.
impl From<(u8, u64, u64, u64, u64)> for Reply {
    fn from((granted, wait, tat, interval, paused_for): (u8, u64, u64, u64, u64)) -> Reply {
        Reply {
            granted: granted == 1,
            wait,
            tat,
            interval,
            paused_for,
        }
    }
}

/// What one operation leaves in Redis besides the reply.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Stored {
    pub bucket: Option<Bucket>,
    /// A new AIMD cut: `(cut_to, cut_at)`, its event ending at `event_end` (stored beside).
    pub cut: Option<(f64, u64)>,
    pub event_end: Option<u64>,
}

/// Runs `op` on `bucket` at `now`; returns the reply and what to store.
pub fn apply(now: u64, bucket: Bucket, live: &Live, params: Params, op: Op) -> (Reply, Stored) {
    let Bucket { tat, pause } = bucket;
    let base = live.interval.unwrap_or(params.interval);
    let burst = live.burst.unwrap_or(params.burst);
    let mut fraction = share(now, live, params.aimd);
    let mut interval = effective(base, fraction);
    let mut tau = gcra::tolerance(interval, burst);
    let reply = |granted, wait, tat, interval, p: u64| Reply {
        granted,
        wait,
        tat,
        interval,
        paused_for: p.saturating_sub(now),
    };
    let keep = |b| Stored {
        bucket: Some(b),
        ..Stored::default()
    };
    match op {
        Op::Reserve { max_wait } => {
            let t = tat.max(now);
            let go = gcra::conforms_from(t, tau).max(now).max(pause);
            let wait = go - now;
            if wait > max_wait {
                return (reply(false, wait, tat, interval, pause), Stored::default());
            }
            let new = gcra::after(t, go, interval);
            (
                reply(true, wait, new, interval, pause),
                keep(Bucket { tat: new, pause }),
            )
        }
        Op::Pause { retry_after } => {
            let (mut cut, mut event_end) = (None, None);
            // Once per congestion event, as the local limiter: 429s that come within the pause
            // of the last cut (or within one clean interval of it) are the same event.
            let in_event = live.event_end.is_some_and(|end| now < end);
            if let Some(a) = params.aimd.filter(|_| !in_event) {
                fraction = (fraction * a.factor).max(a.floor).min(1.0);
                cut = Some((fraction, now));
                event_end = Some((now + retry_after).max(now + a.every));
                interval = effective(base, fraction);
                tau = gcra::tolerance(interval, burst);
            }
            let p = pause.max(now + retry_after);
            let t = tat.max(p + tau);
            let stored = Stored {
                bucket: Some(Bucket { tat: t, pause: p }),
                cut,
                event_end,
            };
            (reply(true, 0, t, interval, p), stored)
        }
        Op::Release { tat: granted } if granted == tat => {
            let t = tat - interval;
            (
                reply(true, 0, t, interval, pause),
                keep(Bucket { tat: t, pause }),
            )
        }
        Op::Release { .. } => (reply(false, 0, tat, interval, pause), Stored::default()),
    }
}

/// One checked case: an operation on a bucket and live parameters at `now`, and the answer.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub now: u64,
    pub bucket: Bucket,
    pub live: Live,
    pub params: Params,
    pub op: Op,
    pub want: Reply,
    /// The AIMD cut the operation stores, if any.
    pub cut: Option<(f64, u64)>,
}

/// The cases both implementations must answer alike.
#[doc(hidden)]
pub fn cases() -> Vec<Case> {
    // (now, tat, pause, interval, burst, op) -> (granted, wait, tat, interval, paused_for)
    type Row = ((u64, u64, u64, u64, u64, Op), (bool, u64, u64, u64, u64));
    let reserve = |max_wait| Op::Reserve { max_wait };
    let rows: [Row; 12] = [
        // An empty bucket lets the first request go now.
        ((1_000, 0, 0, 100, 1, reserve(0)), (true, 0, 1_100, 100, 0)),
        // Burst 3: the third request in the same instant still goes now, the fourth waits T.
        (
            (1_000, 1_200, 0, 100, 3, reserve(0)),
            (true, 0, 1_300, 100, 0),
        ),
        (
            (1_000, 1_300, 0, 100, 3, reserve(500)),
            (true, 100, 1_400, 100, 0),
        ),
        // Reject mode (max_wait 0) does not reserve what it cannot have now.
        (
            (1_000, 1_300, 0, 100, 3, reserve(0)),
            (false, 100, 1_300, 100, 0),
        ),
        // A reservation past the caller's deadline is not made.
        (
            (1_000, 5_000, 0, 100, 1, reserve(3_999)),
            (false, 4_000, 5_000, 100, 0),
        ),
        (
            (1_000, 5_000, 0, 100, 1, reserve(4_000)),
            (true, 4_000, 5_100, 100, 0),
        ),
        // An old tat counts from now: idle time does not pile up beyond the burst.
        (
            (9_000, 1_000, 0, 100, 2, reserve(0)),
            (true, 0, 9_100, 100, 0),
        ),
        // A pause holds the key until it ends, whatever the bucket says.
        (
            (1_000, 0, 3_000, 100, 5, reserve(10_000)),
            (true, 2_000, 3_100, 100, 2_000),
        ),
        // Pausing moves tat so the key restarts at its rate, without a burst.
        (
            (1_000, 1_000, 0, 100, 3, Op::Pause { retry_after: 2_000 }),
            (true, 0, 3_200, 100, 2_000),
        ),
        // A shorter pause never shortens a longer one.
        (
            (1_000, 9_000, 8_000, 100, 1, Op::Pause { retry_after: 10 }),
            (true, 0, 9_000, 100, 7_000),
        ),
        // The last reservation gives its interval back; an earlier one cannot.
        (
            (1_000, 1_500, 0, 100, 1, Op::Release { tat: 1_500 }),
            (true, 0, 1_400, 100, 0),
        ),
        (
            (1_000, 1_600, 0, 100, 1, Op::Release { tat: 1_500 }),
            (false, 0, 1_600, 100, 0),
        ),
    ];
    let mut out: Vec<Case> = rows
        .into_iter()
        .map(|((now, tat, pause, interval, burst, op), want)| Case {
            now,
            bucket: Bucket { tat, pause },
            live: Live::default(),
            params: Params {
                interval,
                burst,
                aimd: None,
            },
            op,
            want: Reply {
                granted: want.0,
                wait: want.1,
                tat: want.2,
                interval: want.3,
                paused_for: want.4,
            },
            cut: None,
        })
        .collect();
    out.extend(live_cases());
    out
}

/// Cases with parameters in Redis: a live change, and AIMD cuts and steps.
fn live_cases() -> Vec<Case> {
    let aimd = Some(Aimd {
        factor: 0.5,
        floor: 0.1,
        step: 0.25,
        every: 1_000,
    });
    let params = Params {
        interval: 100,
        burst: 1,
        aimd,
    };
    let r = |granted, wait, tat, interval, paused_for| Reply {
        granted,
        wait,
        tat,
        interval,
        paused_for,
    };
    let case = |now, live, op, want, cut| Case {
        now,
        bucket: Bucket::default(),
        live,
        params,
        op,
        want,
        cut,
    };
    let changed = Live {
        interval: Some(300),
        burst: Some(2),
        ..Live::default()
    };
    let cut_at = |cut_to, cut_at| Live {
        cut_to: Some(cut_to),
        cut_at: Some(cut_at),
        ..Live::default()
    };
    let reserve = Op::Reserve { max_wait: 0 };
    let pause = Op::Pause { retry_after: 500 };
    vec![
        // A live change in Redis overrides what the instance was configured with.
        case(1_000, changed, reserve, r(true, 0, 1_300, 300, 0), None),
        // A 429 halves the share: twice the interval; the pause restarts at the new rate.
        case(
            1_000,
            Live::default(),
            pause,
            r(true, 0, 1_500, 200, 500),
            Some((0.5, 1_000)),
        ),
        // Cuts compound down to the floor (0.1 of the rate: ten times the interval).
        case(
            1_000,
            cut_at(0.15, 1_000),
            pause,
            r(true, 0, 1_500, 1_000, 500),
            Some((0.1, 1_000)),
        ),
        // A second 429 within the event of the last cut (until 1_500) cuts no further: the
        // share stays 0.5, the interval 200.
        case(
            1_200,
            Live {
                event_end: Some(1_500),
                ..cut_at(0.5, 1_000)
            },
            pause,
            r(true, 0, 1_700, 200, 500),
            None,
        ),
        // After the event, the next 429 cuts again (0.5 to 0.25: four times the interval).
        case(
            1_600,
            Live {
                event_end: Some(1_500),
                ..cut_at(0.5, 1_600)
            },
            pause,
            r(true, 0, 2_100, 400, 500),
            Some((0.25, 1_600)),
        ),
        // Two clean intervals after a cut to 0.5, the share is back to 1 (0.5 + 2 × 0.25).
        case(
            3_500,
            cut_at(0.5, 1_000),
            reserve,
            r(true, 0, 3_600, 100, 0),
            None,
        ),
        // One clean interval: 0.75 of the rate, the interval 100 / 0.75 rounded down.
        case(
            2_500,
            cut_at(0.5, 1_000),
            reserve,
            r(true, 0, 2_633, 133, 0),
            None,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arithmetic_answers_every_case() {
        for (i, c) in cases().into_iter().enumerate() {
            let (got, stored) = apply(c.now, c.bucket, &c.live, c.params, c.op);
            assert_eq!(got, c.want, "case {i}: {c:?}");
            if let Some(b) = stored.bucket {
                assert_eq!(b.tat, got.tat, "case {i}: stored tat");
            }
            assert_eq!(stored.cut, c.cut, "case {i}: the AIMD cut");
        }
    }

    /// 50/s with burst 1 for one simulated second: requests arriving all at once are spread
    /// one interval apart and the second holds exactly 50 starts.
    #[test]
    fn reservations_spread_a_crowd_at_the_rate() {
        let interval = 20_000;
        let params = Params {
            interval,
            burst: 1,
            aimd: None,
        };
        let mut bucket = Bucket::default();
        let starts: Vec<u64> = (0..60)
            .map(|_| {
                let op = Op::Reserve { max_wait: u64::MAX };
                let (r, s) = apply(0, bucket, &Live::default(), params, op);
                bucket = s.bucket.unwrap();
                r.wait
            })
            .collect();
        assert_eq!(starts.iter().filter(|&&w| w < 1_000_000).count(), 50);
        assert!(starts.windows(2).all(|w| w[1] - w[0] == interval));
    }
}
