//! AIMD and live changes.

use std::time::Duration;

use futures_util::FutureExt;
use pacer::config::{Adaptive, Limit, Rate};
use pacer::shape::{LimitKey, LimitUpdate, Limiter};
use tokio::time::{sleep, Instant};

use crate::support::limiter::*;

fn effective(l: &pacer::shape::LocalLimiter) -> f64 {
    l.state().effective_rate.unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// 10/s, adaptive: halve per event, a step of 1/s back per clean 5 s.
fn adaptive(floor: f64) -> &'static pacer::shape::LocalLimiter {
    leak(Limit {
        rate: Some(per_second(10)),
        adaptive: Some(Adaptive {
            factor: 0.5,
            floor,
            step: 0.1,
            interval: Duration::from_secs(5),
        }),
        ..limit()
    })
}

#[tokio::test(start_paused = true)]
async fn aimd_cuts_down_to_the_floor_and_recovers_step_by_step() {
    let l = adaptive(0.2);
    assert!(close(effective(l), 10.0));
    // One congestion event per interval: a clean interval gives a step back before each cut
    // (0.5, then 0.6 x 0.5, then 0.4 x 0.5 = the floor).
    for (i, expected) in [5.0, 3.0, 2.0].into_iter().enumerate() {
        if i > 0 {
            sleep(Duration::from_secs(5)).await;
        }
        l.on_throttled(LimitKey::GLOBAL, Duration::ZERO);
        assert!(
            close(effective(l), expected),
            "{} != {expected}",
            effective(l)
        );
    }
    assert_eq!(l.state().cuts, 3);
    assert_eq!(
        l.state().rate,
        Some(10.0),
        "the configured rate stays as configured"
    );
    sleep(Duration::from_millis(4999)).await;
    assert!(close(effective(l), 2.0));
    sleep(Duration::from_millis(1)).await;
    assert!(close(effective(l), 3.0));
    sleep(Duration::from_secs(35)).await;
    assert!(
        close(effective(l), 10.0),
        "back to the configured rate, not above"
    );
}

#[tokio::test(start_paused = true)]
async fn the_effective_rate_paces_the_queue() {
    let l = leak(Limit {
        rate: Some(per_second(10)),
        adaptive: Some(Adaptive {
            factor: 0.5,
            floor: 0.1,
            step: 0.1,
            interval: Duration::from_secs(60),
        }),
        ..limit()
    });
    l.on_throttled(LimitKey::GLOBAL, Duration::ZERO); // 5/s
    let start = Instant::now();
    let times = release_times(l, 6).await;
    let gaps: Vec<_> = times.iter().map(|&t| t - start).collect();
    let ms = Duration::from_millis;
    assert_eq!(
        gaps,
        vec![ms(0), ms(200), ms(400), ms(600), ms(800), ms(1000)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_live_rate_change_reaches_queued_requests_at_once() {
    let l = leak(Limit {
        rate: Some(per_second(1)),
        ..limit()
    });
    let start = Instant::now();
    at_once(l, req(1)).unwrap();
    let queued: Vec<_> = (0..4).map(|_| spawn(l, req(1))).collect();
    tokio::task::yield_now().await;
    let state = l
        .update(LimitUpdate {
            rate: Some(per_second(10)),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(state.effective_rate, Some(10.0));
    let mut times = Vec::new();
    for h in queued {
        let (at, p) = h.await.unwrap();
        p.unwrap();
        times.push(at - start);
    }
    let ms = Duration::from_millis;
    assert_eq!(times, vec![ms(100), ms(200), ms(300), ms(400)]);
}

#[tokio::test(start_paused = true)]
async fn a_live_concurrency_change_grows_at_once_and_shrinks_gently() {
    let l = leak(Limit {
        concurrency: Some(1),
        ..limit()
    });
    let p1 = at_once(l, req(1)).unwrap();
    let waiting: Vec<_> = (0..3).map(|_| l.acquire(req(1))).collect();
    let state = l
        .update(LimitUpdate {
            concurrency: Some(3),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        (state.concurrency, state.in_flight, state.queue_depth),
        (Some(3), 3, 1)
    );
    let mut waiting = waiting.into_iter();
    let p2 = waiting.next().unwrap().now_or_never().unwrap().unwrap();
    let p3 = waiting.next().unwrap().now_or_never().unwrap().unwrap();
    let mut last = waiting.next().unwrap();

    l.update(LimitUpdate {
        concurrency: Some(1),
        ..Default::default()
    })
    .unwrap();
    drop(p1);
    drop(p2);
    assert!(
        (&mut last).now_or_never().is_none(),
        "still at the new cap of 1"
    );
    drop(p3);
    assert!(last.now_or_never().unwrap().unwrap().holds_slot());
}

#[tokio::test(start_paused = true)]
async fn invalid_changes_are_refused_and_change_nothing() {
    let l = leak(Limit {
        rate: Some(per_second(5)),
        burst: 2,
        ..limit()
    });
    let zero = Rate {
        count: 0,
        per: Duration::from_secs(1),
    };
    for bad in [
        LimitUpdate {
            rate: Some(zero),
            burst: Some(4),
            ..Default::default()
        },
        LimitUpdate {
            burst: Some(0),
            ..Default::default()
        },
        LimitUpdate {
            concurrency: Some(0),
            ..Default::default()
        },
    ] {
        assert!(l.update(bad).is_err());
    }
    let state = l.state();
    assert_eq!(
        (state.effective_rate, state.burst, state.concurrency),
        (Some(5.0), 2, None)
    );
}

#[tokio::test(start_paused = true)]
async fn five_simultaneous_429s_cut_once() {
    let l = adaptive(0.1);
    for _ in 0..5 {
        l.on_throttled(LimitKey::GLOBAL, Duration::from_secs(1));
    }
    assert!(close(effective(l), 5.0), "{}", effective(l));
    assert_eq!(l.state().cuts, 1);
    // Recovery starts from the cut rate: one step (1/s) per clean interval.
    sleep(Duration::from_secs(5)).await;
    assert!(close(effective(l), 6.0), "{}", effective(l));
}
