//! Retry-After pauses and retry priority.

use std::time::Duration;

use pacer::config::Limit;
use pacer::shape::{LimitKey, Limiter};
use pacer::Error;
use tokio::time::Instant;

use crate::support::limiter::*;

fn limiter() -> &'static pacer::shape::LocalLimiter {
    leak(Limit {
        rate: Some(per_second(10)),
        ..limit()
    })
}

#[tokio::test(start_paused = true)]
async fn a_pause_holds_the_key_and_answers_hopeless_waiters_at_once() {
    let l = limiter();
    let start = Instant::now();
    at_once(l, req(1)).unwrap();
    let patient = spawn(l, req_until(1, Duration::from_secs(5)));
    let hasty = spawn(l, req_until(1, Duration::from_secs(1)));
    tokio::task::yield_now().await;

    l.on_throttled(LimitKey::GLOBAL, Duration::from_secs(2));
    assert_eq!(
        l.paused_until(LimitKey::GLOBAL),
        Some(start + Duration::from_secs(2))
    );
    assert_eq!(l.state().paused_ms, Some(2000));

    let (at, result) = hasty.await.unwrap();
    assert_eq!(
        at, start,
        "answered when the pause began, not at its deadline"
    );
    match result {
        Err(Error::QueueTimeout { retry_after, .. }) => {
            assert_eq!(
                retry_after,
                Some(Duration::from_secs(2)),
                "the time left in the pause"
            )
        }
        other => panic!("expected QueueTimeout, got {other:?}"),
    }
    assert_eq!(l.state().queue_depth, 1);

    let (at, result) = patient.await.unwrap();
    result.unwrap();
    assert_eq!(
        at - start,
        Duration::from_secs(2),
        "released exactly when the pause ends"
    );
    assert_eq!(l.paused_until(LimitKey::GLOBAL), None);
    assert_eq!(l.state().paused_ms, None);
}

#[tokio::test(start_paused = true)]
async fn pauses_extend_and_never_shorten() {
    let l = limiter();
    let start = Instant::now();
    l.on_throttled(LimitKey::GLOBAL, Duration::from_secs(3));
    l.on_throttled(LimitKey::GLOBAL, Duration::from_secs(1));
    assert_eq!(
        l.paused_until(LimitKey::GLOBAL),
        Some(start + Duration::from_secs(3))
    );
    l.on_throttled(LimitKey::GLOBAL, Duration::from_secs(4));
    assert_eq!(
        l.paused_until(LimitKey::GLOBAL),
        Some(start + Duration::from_secs(4))
    );
    let (at, result) = spawn(l, req(1)).await.unwrap();
    result.unwrap();
    assert_eq!(at - start, Duration::from_secs(4));
}

#[tokio::test(start_paused = true)]
async fn newcomers_during_a_pause_are_refused_if_it_outlasts_their_deadline() {
    let l = limiter();
    l.on_throttled(LimitKey::GLOBAL, Duration::from_secs(2));
    match at_once(l, req_until(1, Duration::from_millis(500))) {
        Err(Error::QueueTimeout { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_millis(1500)))
        }
        other => panic!("expected QueueTimeout, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_pause_is_per_key() {
    let l = leak(Limit {
        rate: Some(per_second(10)),
        key: pacer::config::KeyKind::Token,
        ..limit()
    });
    l.on_throttled(LimitKey(2), Duration::from_secs(2));
    assert!(l.paused_until(LimitKey(2)).is_some());
    assert_eq!(l.paused_until(LimitKey(3)), None);
    at_once(l, req(3)).expect("another key is not paused");
}

#[tokio::test(start_paused = true)]
async fn retries_go_first_after_the_pause() {
    let l = limiter();
    let start = Instant::now();
    at_once(l, req(1)).unwrap();
    l.on_throttled(LimitKey::GLOBAL, Duration::from_secs(1));
    let n1 = spawn(l, req(1));
    let n2 = spawn(l, req(1));
    let r = spawn(l, retry(1));
    let mut order = Vec::new();
    // The retry is the probe: the others wait for its answer (its permit going away).
    for (name, h) in [("r", r), ("n1", n1), ("n2", n2)] {
        let (at, result) = h.await.unwrap();
        result.unwrap();
        order.push((at - start, name));
    }
    order.sort();
    let ms = Duration::from_millis;
    assert_eq!(
        order,
        vec![(ms(1000), "r"), (ms(1100), "n1"), (ms(1200), "n2")]
    );
}

#[tokio::test(start_paused = true)]
async fn one_probe_goes_when_a_pause_ends_and_its_answer_decides() {
    let l = limiter();
    let start = Instant::now();
    l.on_throttled(LimitKey::GLOBAL, Duration::from_secs(2));
    let probe = spawn(l, req(1));
    let next = spawn(l, req(1));
    let (at, permit) = probe.await.unwrap();
    let permit = permit.unwrap();
    assert_eq!(at - start, Duration::from_secs(2));
    assert!(permit.is_probe());

    // Its answer is another 429: the key pauses again (bounded by the caller again).
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !next.is_finished(),
        "nothing else goes while the probe is out"
    );
    permit.throttled();
    drop(permit);
    l.on_throttled(LimitKey::GLOBAL, Duration::from_secs(2));
    let (at, second) = next.await.unwrap();
    let second = second.unwrap();
    assert_eq!(at - start, Duration::from_secs(7), "the next probe");
    assert!(second.is_probe());

    // Success: the key resumes at its rate.
    let third = spawn(l, req(1));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!third.is_finished());
    drop(second);
    let (at, permit) = third.await.unwrap();
    assert!(!permit.unwrap().is_probe());
    assert_eq!(at - start, Duration::from_secs(8));
    assert_eq!(l.paused_until(LimitKey::GLOBAL), None);
}

#[tokio::test(start_paused = true)]
async fn a_probe_whose_429_never_pauses_lets_the_next_probe_go_after_a_grace() {
    let l = limiter();
    let start = Instant::now();
    l.on_throttled(LimitKey::GLOBAL, Duration::from_secs(1));
    let (_, permit) = spawn(l, req(1)).await.unwrap();
    let permit = permit.unwrap();
    let next = spawn(l, req(1));
    permit.throttled();
    drop(permit);
    let (at, again) = next.await.unwrap();
    assert!(again.unwrap().is_probe());
    assert_eq!(at - start, Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn after_a_pause_the_rest_follow_at_the_rate_not_in_a_burst() {
    // 10/s with a burst of 10: a pause of 1 s must not hand out a refilled burst of 10.
    let l = leak(Limit {
        rate: Some(per_second(10)),
        burst: 10,
        ..limit()
    });
    let start = Instant::now();
    l.on_throttled(LimitKey::GLOBAL, Duration::from_secs(1));
    let handles: Vec<_> = (0..20).map(|_| spawn(l, req(1))).collect();
    let mut times = Vec::new();
    for h in handles {
        let (at, permit) = h.await.unwrap();
        drop(permit.unwrap()); // the probe's answer: success
        times.push(at);
    }
    assert_eq!(
        times[0] - start,
        Duration::from_secs(1),
        "the probe at the end"
    );
    for pair in times.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(100),
            "two releases {:?} apart",
            pair[1] - pair[0]
        );
    }
}
