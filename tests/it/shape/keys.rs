//! Keys: isolation, the bound, idle expiry.

use std::time::Duration;

use futures_util::FutureExt;
use pacer::config::{KeyKind, Limit};
use pacer::shape::Limiter;
use pacer::Error;

use crate::support::limiter::*;

fn keyed(max_keys: usize) -> &'static pacer::shape::LocalLimiter {
    leak(Limit {
        rate: Some(per_second(1)),
        key: KeyKind::Token,
        max_keys,
        key_idle: Duration::from_secs(10),
        ..limit()
    })
}

#[tokio::test(start_paused = true)]
async fn keys_are_independent() {
    let l = keyed(10);
    at_once(l, req(2)).unwrap();
    let mut second = l.acquire(req(2));
    assert!((&mut second).now_or_never().is_none(), "key 2 must wait");
    at_once(l, req(3)).expect("key 3 has its own bucket");
    let state = l.state();
    assert_eq!(
        (state.keys, state.queue_depth, state.key.as_str()),
        (2, 1, "token")
    );
}

#[tokio::test(start_paused = true)]
async fn a_full_table_refuses_new_keys_until_idle_ones_expire() {
    let l = keyed(2);
    at_once(l, req(2)).unwrap();
    at_once(l, req(3)).unwrap();
    assert!(matches!(
        at_once(l, req(4)),
        Err(Error::KeysExhausted { .. })
    ));
    let mut known = l.acquire(req(3));
    assert!(
        (&mut known).now_or_never().is_none(),
        "a known key queues as usual"
    );
    drop(known);
    assert_eq!(l.state().keys, 2);

    tokio::time::sleep(Duration::from_secs(11)).await;
    at_once(l, req(4)).expect("idle keys made room");
    assert!(l.state().keys <= 2);
}

#[tokio::test(start_paused = true)]
async fn a_key_with_waiters_does_not_expire() {
    let l = leak(Limit {
        rate: Some(per_second(1)),
        key: KeyKind::Token,
        max_keys: 1,
        key_idle: Duration::from_millis(100),
        ..limit()
    });
    at_once(l, req(2)).unwrap();
    let queued: Vec<_> = (0..5).map(|_| spawn(l, req(2))).collect();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(matches!(
        at_once(l, req(3)),
        Err(Error::KeysExhausted { .. })
    ));
    for h in queued {
        h.await.unwrap().1.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    at_once(l, req(3)).expect("key 2 went idle");
}

#[tokio::test(start_paused = true)]
async fn a_key_that_took_an_expired_ones_place_is_limited_as_usual() {
    // Key idle 10 s > the bucket's refill time, so forgetting a key grants nothing extra.
    let l = keyed(1);
    at_once(l, req(2)).unwrap();
    tokio::time::sleep(Duration::from_secs(11)).await;
    at_once(l, req(3)).unwrap();
    assert!(
        l.acquire(req(3)).now_or_never().is_none(),
        "a new key gets one burst, not more"
    );
}
