//! `quota: N/W`: a sliding log per key.

use std::time::Duration;

use pacer::config::{KeyKind, Limit, Mode, Quota};
use pacer::shape::{LimitKey, LimitUpdate, Limiter};
use pacer::Error;
use tokio::time::Instant;

use crate::support::limiter::*;

fn quota(count: u32, window: Duration) -> Quota {
    Quota {
        count,
        window,
        margin: Quota::default_margin(window),
    }
}

fn limiter(count: u32, window: Duration) -> &'static pacer::shape::LocalLimiter {
    leak(Limit {
        quota: Some(quota(count, window)),
        ..limit()
    })
}

#[tokio::test(start_paused = true)]
async fn the_whole_quota_at_once_then_a_window_and_margin_later() {
    let l = limiter(3, Duration::from_secs(1));
    let start = Instant::now();
    let times = release_times(l, 7).await;
    let ms: Vec<u64> = times
        .iter()
        .map(|&t| (t - start).as_millis() as u64)
        .collect();
    assert_eq!(ms, [0, 0, 0, 1050, 1050, 1050, 2100]);
}

#[tokio::test(start_paused = true)]
async fn after_a_pause_one_probe_then_the_pace() {
    let l = limiter(10, Duration::from_secs(1));
    let start = Instant::now();
    at_once(l, req(1)).unwrap();
    l.on_throttled(LimitKey::GLOBAL, Duration::from_secs(1));
    let (at, probe) = spawn(l, req(1)).await.unwrap();
    assert_eq!(at - start, Duration::from_secs(1));
    drop(probe.unwrap());
    let (at, _) = spawn(l, req(1)).await.unwrap();
    assert_eq!(at - start, Duration::from_millis(1100));
}

#[tokio::test(start_paused = true)]
async fn reject_mode_says_when_the_window_frees() {
    let l = leak(Limit {
        quota: Some(quota(2, Duration::from_secs(10))),
        mode: Mode::Reject,
        ..limit()
    });
    at_once(l, req(1)).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    at_once(l, req(1)).unwrap();
    match at_once(l, req(1)) {
        Err(Error::RateLimited { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_millis(9100)))
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn observe_mode_lets_everything_through() {
    let l = leak(Limit {
        quota: Some(quota(1, Duration::from_secs(10))),
        mode: Mode::Observe,
        ..limit()
    });
    for _ in 0..5 {
        at_once(l, req(1)).unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn a_quota_is_per_key_and_takes_a_slot_with_it() {
    let l = leak(Limit {
        quota: Some(quota(1, Duration::from_secs(10))),
        concurrency: Some(1),
        key: KeyKind::Token,
        ..limit()
    });
    let held = at_once(l, req(1)).unwrap();
    assert!(held.holds_slot());
    let other = at_once(
        l,
        pacer::shape::Acquire {
            key: LimitKey(2),
            ..req(1)
        },
    )
    .unwrap();
    assert!(
        other.holds_slot(),
        "another key has its own quota and slots"
    );
    drop(held);
    // The slot is free again, but the quota is not: a window and margin later.
    let start = Instant::now();
    let (at, _) = spawn(l, req(1)).await.unwrap();
    assert_eq!(at - start, Duration::from_millis(10_100));
}

#[tokio::test(start_paused = true)]
async fn queued_requests_that_cannot_make_it_are_refused_at_once() {
    let l = limiter(2, Duration::from_secs(10));
    at_once(l, req(1)).unwrap();
    at_once(l, req(1)).unwrap();
    match at_once(l, req_until(1, Duration::from_secs(5))) {
        Err(Error::QueueTimeout { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_millis(5100)))
        }
        other => panic!("expected QueueTimeout, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_live_change_reaches_the_quota() {
    let l = limiter(1, Duration::from_secs(10));
    at_once(l, req(1)).unwrap();
    let start = Instant::now();
    let waiting = spawn(l, req(1));
    tokio::task::yield_now().await;
    let state = l
        .update(LimitUpdate {
            quota: Some(quota(2, Duration::from_secs(10))),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(state.quota.unwrap().count, 2);
    let (at, _) = waiting.await.unwrap();
    assert_eq!(at, start, "a bigger quota lets the waiter go at once");
}
