//! The queue: order, bounds, deadlines, cancellation, concurrency slots.

use std::time::Duration;

use futures_util::FutureExt;
use pacer::shape::Limiter;
use pacer::Error;
use tokio::time::{sleep, Instant};

use crate::support::limiter::*;

#[tokio::test(start_paused = true)]
async fn fifo_order_under_contention() {
    let l = leak(pacer::config::Limit {
        rate: Some(per_second(10)),
        ..limit()
    });
    let start = Instant::now();
    let times = release_times(l, 20).await;
    for (i, at) in times.iter().enumerate() {
        assert_eq!(
            *at - start,
            100 * MS * i as u32,
            "request {i} left out of turn"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_refuses_the_newcomer_with_a_hint() {
    let mut cfg = limit();
    cfg.rate = Some(per_second(1));
    cfg.queue.max_depth = 2;
    let l = leak(cfg);
    let _first = at_once(l, req(1)).unwrap();
    let b = spawn(l, req(1));
    let c = spawn(l, req(1));
    match at_once(l, req(1)) {
        Err(Error::QueueFull { retry_after, .. }) => {
            assert_eq!(
                retry_after,
                Some(Duration::from_secs(1)),
                "the head leaves in 1 s"
            )
        }
        other => panic!("expected QueueFull, got {other:?}"),
    }
    assert_eq!(l.state().queue_depth, 2);
    b.await.unwrap().1.unwrap();
    let d = spawn(l, req(1)); // a place is free again
    c.await.unwrap().1.unwrap();
    d.await.unwrap().1.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_request_that_cannot_make_its_deadline_is_refused_at_once() {
    let l = leak(pacer::config::Limit {
        rate: Some(per_second(1)),
        ..limit()
    });
    let _first = at_once(l, req(1)).unwrap();
    // Starts at 1 s and 2 s: within 2.5 s.
    let b = spawn(l, req_until(1, 2500 * MS));
    let c = spawn(l, req_until(1, 2500 * MS));
    // Would start at 3 s: known now, so answered now, with how much later it could work.
    match at_once(l, req_until(1, 2500 * MS)) {
        Err(Error::QueueTimeout { retry_after, .. }) => assert_eq!(retry_after, Some(500 * MS)),
        other => panic!("expected an early QueueTimeout, got {other:?}"),
    }
    assert!(b.await.unwrap().1.is_ok());
    assert!(c.await.unwrap().1.is_ok());
}

#[tokio::test(start_paused = true)]
async fn max_wait_caps_the_deadline() {
    let mut cfg = limit();
    cfg.rate = Some(per_second(1));
    cfg.queue.max_wait = Duration::from_millis(500);
    let l = leak(cfg);
    let _first = at_once(l, req(1)).unwrap();
    let err = at_once(l, req(1)).unwrap_err();
    assert!(is_queue_timeout(&err), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn a_request_waiting_for_a_slot_times_out_at_its_deadline() {
    let l = leak(pacer::config::Limit {
        concurrency: Some(1),
        ..limit()
    });
    let start = Instant::now();
    let held = at_once(l, req(1)).unwrap();
    let (at, result) = spawn(l, req_until(1, Duration::from_secs(1)))
        .await
        .unwrap();
    assert_eq!(at - start, Duration::from_secs(1));
    match result {
        Err(Error::QueueTimeout { retry_after, .. }) => {
            assert_eq!(
                retry_after,
                Some(Duration::from_secs(1)),
                "unknown: in a second"
            )
        }
        other => panic!("expected QueueTimeout, got {other:?}"),
    }
    assert_eq!(l.state().queue_depth, 0);
    drop(held);
}

#[tokio::test(start_paused = true)]
async fn concurrency_cap_with_permits_held_and_dropped() {
    let l = leak(pacer::config::Limit {
        concurrency: Some(2),
        ..limit()
    });
    let p1 = at_once(l, req(1)).unwrap();
    let p2 = at_once(l, req(1)).unwrap();
    assert!(p1.holds_slot() && p2.holds_slot());
    let mut third = l.acquire(req(1));
    assert!((&mut third).now_or_never().is_none(), "the cap is reached");
    let state = l.state();
    assert_eq!((state.in_flight, state.queue_depth), (2, 1));

    let before = Instant::now();
    drop(p1);
    let p3 = third.await.unwrap();
    assert_eq!(
        Instant::now(),
        before,
        "the freed slot is handed over at once"
    );
    assert_eq!(l.state().in_flight, 2);
    drop((p2, p3));
    assert_eq!(l.state().in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn dropping_a_queued_request_frees_its_place_at_once() {
    let l = leak(pacer::config::Limit {
        rate: Some(per_second(1)),
        ..limit()
    });
    let start = Instant::now();
    let _first = at_once(l, req(1)).unwrap();
    let b = l.acquire(req(1));
    let c = spawn(l, req(1));
    tokio::task::yield_now().await;
    assert_eq!(l.state().queue_depth, 2);
    drop(b);
    assert_eq!(
        l.state().queue_depth,
        1,
        "the place is freed when the future is dropped"
    );
    let (at, result) = c.await.unwrap();
    result.unwrap();
    assert_eq!(
        at - start,
        Duration::from_secs(1),
        "the next request took the freed turn"
    );
}

#[tokio::test(start_paused = true)]
async fn a_granted_but_abandoned_request_gives_its_slot_back() {
    let l = leak(pacer::config::Limit {
        concurrency: Some(1),
        ..limit()
    });
    let held = at_once(l, req(1)).unwrap();
    let mut b = l.acquire(req(1));
    assert!((&mut b).now_or_never().is_none());
    let c = spawn(l, req(1));
    drop(held); // hands the slot to b, which never looks at it again
    drop(b);
    let (_, result) = c.await.unwrap();
    let permit = result.unwrap();
    assert!(permit.holds_slot());
    assert_eq!(l.state().in_flight, 1);
    drop(permit);
    assert_eq!(l.state().in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn the_slot_waits_for_the_token_and_not_the_other_way_round() {
    // Rate 10/s, one slot: a request holding the slot for 1 s must not let queued requests burst
    // afterwards; each still leaves one token apart, and no token is spent while slot-bound.
    let mut cfg = limit();
    cfg.rate = Some(per_second(10));
    cfg.concurrency = Some(1);
    let l = leak(cfg);
    let start = Instant::now();
    let held = at_once(l, req(1)).unwrap();
    let waiting: Vec<_> = (0..3).map(|_| spawn(l, req(1))).collect();
    sleep(Duration::from_secs(1)).await;
    drop(held);
    let mut times = Vec::new();
    for h in waiting {
        let (at, p) = h.await.unwrap();
        drop(p.unwrap()); // the upstream answered at once
        times.push(at - start);
    }
    let ms = |n| Duration::from_millis(n);
    assert_eq!(times, vec![ms(1000), ms(1100), ms(1200)]);
    assert_eq!(l.state().in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn no_token_is_spent_while_waiting_for_a_slot() {
    // Burst 2 at 1/s, one slot: the second token is still there when the slot frees at 0.5 s.
    let mut cfg = limit();
    cfg.rate = Some(per_second(1));
    cfg.burst = 2;
    cfg.concurrency = Some(1);
    let l = leak(cfg);
    let start = Instant::now();
    let held = at_once(l, req(1)).unwrap();
    let next = spawn(l, req(1));
    sleep(Duration::from_millis(500)).await;
    drop(held);
    let (at, result) = next.await.unwrap();
    result.unwrap();
    assert_eq!(at - start, Duration::from_millis(500));
}

/// A full queue whose head could start now (it waits for a slot, not for a time) used to give
/// no hint, and so a 429 without Retry-After. Every refusal carries one.
#[tokio::test(start_paused = true)]
async fn a_full_queue_always_gives_a_hint() {
    let l = leak(pacer::config::Limit {
        concurrency: Some(1),
        queue: pacer::config::Queue {
            max_depth: 1,
            max_wait: Duration::from_secs(10),
        },
        ..limit()
    });
    let _held = at_once(l, req(1)).unwrap();
    let _queued = spawn(l, req(1));
    match at_once(l, req(1)) {
        Err(Error::QueueFull { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(1)))
        }
        other => panic!("expected QueueFull, got {other:?}"),
    }
}
