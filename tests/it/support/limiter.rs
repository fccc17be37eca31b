//! Building limits and driving acquisitions in tests.

use std::time::Duration;

use futures_util::FutureExt;
use pacer::config::{KeyKind, Limit, Mode, Queue, Rate};
use pacer::shape::{Acquire, LimitKey, Limiter, LocalLimiter, Permit, Priority};
use pacer::Error;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub const MS: Duration = Duration::from_millis(1);
pub const DAY: Duration = Duration::from_secs(24 * 3600);

/// A queueing global limit with no rate and no cap (each test sets what it needs).
pub fn limit() -> Limit {
    Limit {
        name: "test".into(),
        rate: None,
        burst: 1,
        quota: None,
        concurrency: None,
        key: KeyKind::Global,
        mode: Mode::Queue,
        queue: Queue {
            max_depth: 100_000,
            max_wait: DAY,
        },
        max_keys: 1000,
        key_idle: Duration::from_secs(60),
        adaptive: None,
    }
}

pub fn per_second(count: u32) -> Rate {
    Rate {
        count,
        per: Duration::from_secs(1),
    }
}

/// Tests spawn acquire futures, which borrow the limiter: give it a 'static life.
pub fn leak(limit: Limit) -> &'static LocalLimiter {
    Box::leak(Box::new(LocalLimiter::new(limit)))
}

pub fn req(key: u64) -> Acquire {
    Acquire {
        key: LimitKey(key),
        deadline: Instant::now() + DAY,
        priority: Priority::Normal,
    }
}

pub fn req_until(key: u64, wait: Duration) -> Acquire {
    Acquire {
        deadline: Instant::now() + wait,
        ..req(key)
    }
}

pub fn retry(key: u64) -> Acquire {
    Acquire {
        priority: Priority::Retry,
        ..req(key)
    }
}

/// Acquires now (taking its place in line) and waits in a task; yields when it was released.
pub fn spawn(
    l: &'static LocalLimiter,
    req: Acquire,
) -> JoinHandle<(Instant, Result<Permit, Error>)> {
    let wait = l.acquire(req);
    tokio::spawn(async move {
        let result = wait.await;
        (Instant::now(), result)
    })
}

/// Acquires, expecting an answer without any waiting.
pub fn at_once(l: &LocalLimiter, req: Acquire) -> Result<Permit, Error> {
    l.acquire(req)
        .now_or_never()
        .expect("the limiter answered without waiting")
}

/// Release instants of `n` requests that all arrive now, in order.
pub async fn release_times(l: &'static LocalLimiter, n: usize) -> Vec<Instant> {
    let handles: Vec<_> = (0..n).map(|_| spawn(l, req(7))).collect();
    let mut times = Vec::with_capacity(n);
    for h in handles {
        let (at, result) = h.await.unwrap();
        result.expect("released");
        times.push(at);
    }
    times
}

/// The largest number of releases in any window [a, a + t], minus rate × t, over all windows.
/// A limiter with burst B must keep this at or below B.
pub fn max_excess(times: &[Instant], rate: f64) -> f64 {
    let mut sorted = times.to_vec();
    sorted.sort();
    let Some(&first) = sorted.first() else {
        return 0.0;
    };
    let x = |i: usize| rate * (sorted[i] - first).as_secs_f64();
    // (j - i + 1) - rate (t_j - t_i) = (j - x_j) + (x_i - i) + 1, maximised over i <= j.
    let mut best_i = f64::MIN;
    let mut worst = 0.0f64;
    for j in 0..sorted.len() {
        best_i = best_i.max(x(j) - j as f64);
        worst = worst.max((j as f64 - x(j)) + best_i + 1.0);
    }
    worst
}

pub fn is_queue_timeout(e: &Error) -> bool {
    matches!(e, Error::QueueTimeout { .. })
}
