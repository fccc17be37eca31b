//! Many tasks on many threads: the invariants hold whatever the interleaving.
//!
//! Real time, but nothing waits on it for synchronisation: the assertions are about counts
//! (never above the cap, everything answered, nothing left queued), not instants.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pacer::config::{KeyKind, Limit};
use pacer::shape::{Acquire, LimitKey, Limiter, Priority};
use tokio::time::Instant;

use crate::support::limiter::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cap_holds_and_nothing_leaks_under_contention_and_cancellation() {
    let l = leak(Limit {
        rate: Some(per_second(20_000)),
        burst: 50,
        concurrency: Some(3),
        key: KeyKind::Token,
        ..limit()
    });
    // Per key: permits held right now, and the most ever held at once.
    let inside: Arc<[AtomicUsize; 3]> = Arc::new(Default::default());
    let worst: Arc<[AtomicUsize; 3]> = Arc::new(Default::default());
    let mut tasks = Vec::new();
    for i in 0..2000u64 {
        let (inside, worst) = (Arc::clone(&inside), Arc::clone(&worst));
        tasks.push(tokio::spawn(async move {
            let req = Acquire {
                key: LimitKey(2 + i % 3),
                deadline: Instant::now() + Duration::from_secs(30),
                priority: if i % 7 == 0 {
                    Priority::Retry
                } else {
                    Priority::Normal
                },
            };
            // Every fifth client gives up almost at once, while queued or just granted.
            let patience = Duration::from_micros(if i % 5 == 0 { 50 } else { 30_000_000 });
            if let Ok(Ok(permit)) = tokio::time::timeout(patience, l.acquire(req)).await {
                let k = (i % 3) as usize;
                let now = inside[k].fetch_add(1, Ordering::SeqCst) + 1;
                worst[k].fetch_max(now, Ordering::SeqCst);
                tokio::task::yield_now().await;
                inside[k].fetch_sub(1, Ordering::SeqCst);
                drop(permit);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for w in worst.iter() {
        let w = w.load(Ordering::SeqCst);
        assert!(
            (1..=3).contains(&w),
            "{w} permits of one key at once, cap 3"
        );
    }
    let state = l.state();
    assert_eq!((state.in_flight, state.queue_depth), (0, 0), "{state:?}");
}
