//! Redis killed mid-run: each `on_unavailable` mode answers within the timeout, no request
//! hangs, and shared mode resumes when Redis is back.

use std::time::{Duration, Instant};

use super::*;
use crate::support::counting::start_counting;
use crate::support::redis::Redis;
use crate::support::*;

/// Sends `n` requests through `inst` one after the other; each must answer within 1 s.
async fn statuses(inst: &Instance, n: usize) -> Vec<u16> {
    let c = client();
    let mut out = Vec::new();
    for _ in 0..n {
        let start = Instant::now();
        let (status, _, body) = get(&c, &inst.url("/x")).await;
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "a request took {:?}",
            start.elapsed()
        );
        if status == 503 {
            assert_eq!(json(&body)["code"], "pacer.shared.unavailable");
        }
        out.push(status.as_u16());
    }
    out
}

async fn scrape(inst: &Instance) -> String {
    let (status, _, body) = get(&client(), &format!("http://{}/metrics", inst.admin)).await;
    assert_eq!(status, 200);
    String::from_utf8_lossy(&body).into_owned()
}

async fn run_mode(mode: &str) -> Option<(Vec<u16>, Vec<u16>, Instance, Redis)> {
    let mut redis = Redis::start()?;
    let up = start_counting().await;
    // 3/s over 3 instances: this one's local share is 1/s, burst 1.
    let limit = "{ rate: 3/s, burst: 3, mode: reject, shared: true }";
    let extra = format!("  timeout: 50ms\n  on_unavailable: {mode}\n");
    let yaml = config(&redis, &up, limit, &extra);
    let inst = start_shared(&yaml).await;
    assert_eq!(statuses(&inst, 1).await, [200]);
    redis.kill();
    let down = statuses(&inst, 3).await;
    let status = inst.limits.by_name("l").unwrap().shared().unwrap();
    let expected = match mode {
        "local" => "local_fallback",
        other => other,
    };
    assert_eq!(status.mode, expected);
    let metrics = scrape(&inst).await;
    let line = format!("pacer_shared_mode{{limit=\"l\",mode=\"{expected}\"}} 1");
    assert!(metrics.contains(&line), "no {line:?} in:\n{metrics}");
    assert!(
        metrics.contains("pacer_shared_redis_call_seconds_count"),
        "{metrics}"
    );
    let errors: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("pacer_shared_redis_errors_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(errors >= 1, "no Redis error counted:\n{metrics}");
    redis.restart();
    wait_health(&inst.limits, Health::Up).await;
    let back = statuses(&inst, 1).await;
    std::mem::forget(up);
    Some((down, back, inst, redis))
}

#[tokio::test]
async fn local_falls_back_to_a_share_of_the_limit() {
    let Some((down, back, _inst, redis)) = run_mode("local").await else {
        return;
    };
    // The local share is 1/s with burst 1: one passes, the rest are refused by the local limit.
    assert_eq!(down, [200, 429, 429]);
    assert_eq!(back, [200]);
    assert!(
        redis.cli(&["--scan"]).contains(":l:"),
        "shared mode wrote to Redis again"
    );
}

#[tokio::test]
async fn reject_answers_503() {
    let Some((down, back, _inst, _redis)) = run_mode("reject").await else {
        return;
    };
    assert_eq!(down, [503, 503, 503]);
    assert_eq!(back, [200]);
}

#[tokio::test]
async fn allow_lets_requests_through_and_counts_them() {
    let Some((down, back, inst, _redis)) = run_mode("allow").await else {
        return;
    };
    assert_eq!(down, [200, 200, 200]);
    assert_eq!(back, [200]);
    let shared = inst.limits.by_name("l").unwrap().shared().unwrap();
    assert_eq!(shared.unshaped, 3);
}

/// Redis down when pacer starts: requests get the `on_unavailable` answer at once, and the
/// limit becomes shared as soon as Redis answers.
#[tokio::test]
async fn pacer_starts_without_redis_and_shares_once_it_answers() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    redis.kill();
    let up = start_counting().await;
    let limit = "{ rate: 10/s, mode: reject, shared: true }";
    let extra = "  on_unavailable: reject\n";
    let inst = start_shared_any(&config(&redis, &up, limit, extra)).await;
    wait_health(&inst.limits, Health::Down).await;
    assert_eq!(statuses(&inst, 2).await, [503, 503]);
    redis.restart();
    wait_health(&inst.limits, Health::Up).await;
    assert_eq!(statuses(&inst, 1).await, [200]);
}

/// Requests already queued in Redis keep their reserved times when Redis goes away; the local
/// fallback starts after the last of them, so the two never add up above the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fallback_starts_after_the_queue_reserved_in_redis() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let up = start_counting().await;
    let limit = "{ rate: 10/s, burst: 1, shared: true, queue: { max_wait: 10s } }";
    let inst = start_shared(&config(&redis, &up, limit, "")).await;
    let c = client();
    let start = std::time::Instant::now();
    let queued: Vec<_> = (0..10)
        .map(|_| {
            let (c, url) = (c.clone(), inst.url("/q"));
            tokio::spawn(async move {
                send(&c, request("GET", &url).body(Full::default()).unwrap())
                    .await
                    .0
            })
        })
        .collect();
    // All ten reserved (the first goes at once), the last 0.9 s from now.
    for _ in 0..200 {
        if !up.arrivals().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    redis.kill();
    let late = send(
        &c,
        request("GET", &inst.url("/late"))
            .body(Full::default())
            .unwrap(),
    );
    assert_eq!(late.await.0, 200);
    let answered = start.elapsed();
    assert!(
        answered >= Duration::from_millis(850),
        "the fallback let a request go {answered:?} after the start, before the queue reserved in Redis"
    );
    for q in queued {
        assert_eq!(q.await.unwrap(), 200);
    }
    assert_eq!(up.arrivals().len(), 11);
}
