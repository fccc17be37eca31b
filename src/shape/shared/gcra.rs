//! The GCRA arithmetic of shared rates. `gcra.lua` is a line-by-line copy that runs inside
//! Redis; [`cases`] are checked against both (here in unit tests, the script in
//! `tests/shared.rs` with a fixed clock), so the two cannot drift apart.
//!
//! A key's bucket is its theoretical arrival time `tat` (when the bucket would be empty again)
//! and `pause` (the end of a Retry-After pause). All times are microseconds on Redis's clock.
//! With emission interval `T` and burst `B`, a request may go at the first instant `go` with
//! `go >= tat - (B-1)·T`, `go >= now` and `go >= pause`; reserving it moves `tat` to
//! `max(tat, now, go) + T`. Unlike a check-and-reject GCRA, a request that has to wait still
//! takes its place at once: that is what makes the order FIFO across instances.

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

/// A key's bucket as stored in Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bucket {
    pub tat: u64,
    pub pause: u64,
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

/// Runs `op` on `bucket` at `now`; returns the reply and the bucket to store (None: unchanged).
pub fn apply(
    now: u64,
    bucket: Bucket,
    interval: u64,
    burst: u64,
    op: Op,
) -> (Reply, Option<Bucket>) {
    let Bucket { tat, pause } = bucket;
    let tau = interval * burst.saturating_sub(1);
    let paused_for = |p: u64| p.saturating_sub(now);
    let reply = |granted, wait, tat, p| Reply {
        granted,
        wait,
        tat,
        interval,
        paused_for: paused_for(p),
    };
    match op {
        Op::Reserve { max_wait } => {
            let t = tat.max(now);
            let go = t.saturating_sub(tau).max(now).max(pause);
            let wait = go - now;
            if wait > max_wait {
                return (reply(false, wait, tat, pause), None);
            }
            let new = t.max(go) + interval;
            (
                reply(true, wait, new, pause),
                Some(Bucket { tat: new, pause }),
            )
        }
        Op::Pause { retry_after } => {
            let p = pause.max(now + retry_after);
            let t = tat.max(p + tau);
            (reply(true, 0, t, p), Some(Bucket { tat: t, pause: p }))
        }
        Op::Release { tat: granted } if granted == tat => {
            let t = tat - interval;
            (reply(true, 0, t, pause), Some(Bucket { tat: t, pause }))
        }
        Op::Release { .. } => (reply(false, 0, tat, pause), None),
    }
}

/// One checked case: `(now, bucket, interval, burst, op)` and the expected reply.
pub type Case = (u64, Bucket, u64, u64, Op, Reply);

/// The cases both implementations must answer alike.
#[doc(hidden)]
pub fn cases() -> Vec<Case> {
    let b = |tat, pause| Bucket { tat, pause };
    let r = |granted, wait, tat, interval, paused_for| Reply {
        granted,
        wait,
        tat,
        interval,
        paused_for,
    };
    let reserve = |max_wait| Op::Reserve { max_wait };
    vec![
        // An empty bucket lets the first request go now.
        (
            1_000,
            b(0, 0),
            100,
            1,
            reserve(0),
            r(true, 0, 1_100, 100, 0),
        ),
        // Burst 3: the third request in the same instant still goes now, the fourth waits T.
        (
            1_000,
            b(1_200, 0),
            100,
            3,
            reserve(0),
            r(true, 0, 1_300, 100, 0),
        ),
        (
            1_000,
            b(1_300, 0),
            100,
            3,
            reserve(500),
            r(true, 100, 1_400, 100, 0),
        ),
        // Reject mode (max_wait 0) does not reserve what it cannot have now.
        (
            1_000,
            b(1_300, 0),
            100,
            3,
            reserve(0),
            r(false, 100, 1_300, 100, 0),
        ),
        // A reservation past the caller's deadline is not made.
        (
            1_000,
            b(5_000, 0),
            100,
            1,
            reserve(3_999),
            r(false, 4_000, 5_000, 100, 0),
        ),
        (
            1_000,
            b(5_000, 0),
            100,
            1,
            reserve(4_000),
            r(true, 4_000, 5_100, 100, 0),
        ),
        // An old tat counts from now: idle time does not pile up beyond the burst.
        (
            9_000,
            b(1_000, 0),
            100,
            2,
            reserve(0),
            r(true, 0, 9_100, 100, 0),
        ),
        // A pause holds the key until it ends, whatever the bucket says.
        (
            1_000,
            b(0, 3_000),
            100,
            5,
            reserve(10_000),
            r(true, 2_000, 3_100, 100, 2_000),
        ),
        // Pausing moves tat so the key restarts at its rate, without a burst.
        (
            1_000,
            b(1_000, 0),
            100,
            3,
            Op::Pause { retry_after: 2_000 },
            r(true, 0, 3_200, 100, 2_000),
        ),
        // A shorter pause never shortens a longer one.
        (
            1_000,
            b(9_000, 8_000),
            100,
            1,
            Op::Pause { retry_after: 10 },
            r(true, 0, 9_000, 100, 7_000),
        ),
        // The last reservation gives its interval back; an earlier one cannot.
        (
            1_000,
            b(1_500, 0),
            100,
            1,
            Op::Release { tat: 1_500 },
            r(true, 0, 1_400, 100, 0),
        ),
        (
            1_000,
            b(1_600, 0),
            100,
            1,
            Op::Release { tat: 1_500 },
            r(false, 0, 1_600, 100, 0),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arithmetic_answers_every_case() {
        for (i, (now, bucket, interval, burst, op, want)) in cases().into_iter().enumerate() {
            let (got, stored) = apply(now, bucket, interval, burst, op);
            assert_eq!(got, want, "case {i}: {op:?} on {bucket:?} at {now}");
            if let Some(s) = stored {
                assert_eq!(s.tat, got.tat, "case {i}: stored tat");
            }
        }
    }

    /// 50/s with burst 1 for one simulated second: requests arriving all at once are spread
    /// one interval apart and the second holds exactly 50 starts.
    #[test]
    fn reservations_spread_a_crowd_at_the_rate() {
        let interval = 20_000;
        let mut bucket = Bucket::default();
        let starts: Vec<u64> = (0..60)
            .map(|_| {
                let (r, s) = apply(0, bucket, interval, 1, Op::Reserve { max_wait: u64::MAX });
                bucket = s.unwrap();
                r.wait
            })
            .collect();
        assert_eq!(starts.iter().filter(|&&w| w < 1_000_000).count(), 50);
        assert!(starts.windows(2).all(|w| w[1] - w[0] == interval));
    }
}
