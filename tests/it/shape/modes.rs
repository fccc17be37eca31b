//! Reject and observe modes.

use std::time::Duration;

use pacer::config::{Limit, Mode};
use pacer::shape::{LimitKey, Limiter};
use pacer::Error;

use crate::support::limiter::*;

fn retry_after_of(result: Result<pacer::shape::Permit, Error>) -> Option<Duration> {
    match result {
        Err(Error::RateLimited { retry_after, .. }) => retry_after,
        other => panic!("expected RateLimited, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn reject_mode_answers_at_once_with_the_wait() {
    let l = leak(Limit {
        rate: Some(per_second(2)),
        mode: Mode::Reject,
        ..limit()
    });
    at_once(l, req(1)).unwrap();
    assert_eq!(retry_after_of(at_once(l, req(1))), Some(500 * MS));
    tokio::time::sleep(200 * MS).await;
    assert_eq!(retry_after_of(at_once(l, req(1))), Some(300 * MS));
    tokio::time::sleep(300 * MS).await;
    at_once(l, req(1)).unwrap();
    assert_eq!(l.state().queue_depth, 0);
}

#[tokio::test(start_paused = true)]
async fn reject_mode_without_a_slot_says_try_in_a_second() {
    let l = leak(Limit {
        concurrency: Some(1),
        mode: Mode::Reject,
        ..limit()
    });
    let held = at_once(l, req(1)).unwrap();
    // No time to promise, but a 429 always carries a Retry-After.
    assert_eq!(retry_after_of(at_once(l, req(1))), Some(1000 * MS));
    drop(held);
    assert!(at_once(l, req(1)).unwrap().holds_slot());
}

#[tokio::test(start_paused = true)]
async fn reject_mode_during_a_pause_gives_the_time_left() {
    let l = leak(Limit {
        rate: Some(per_second(100)),
        mode: Mode::Reject,
        ..limit()
    });
    l.on_throttled(LimitKey::GLOBAL, Duration::from_secs(3));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        retry_after_of(at_once(l, req(1))),
        Some(Duration::from_secs(2))
    );
}

#[tokio::test(start_paused = true)]
async fn observe_mode_never_waits() {
    let l = leak(Limit {
        rate: Some(per_second(1)),
        concurrency: Some(1),
        mode: Mode::Observe,
        ..limit()
    });
    l.on_throttled(LimitKey::GLOBAL, Duration::from_secs(10));
    let permits: Vec<_> = (0..100).map(|_| at_once(l, req(1)).unwrap()).collect();
    assert!(permits
        .iter()
        .all(|p| !p.holds_slot() && p.waited.is_zero()));
    let state = l.state();
    assert_eq!(
        (state.mode, state.queue_depth, state.in_flight),
        ("observe", 0, 0)
    );
}
