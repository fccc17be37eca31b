//! A shared rate across three instances: precision, shared pauses, live changes.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::*;
use crate::support::counting::start_counting;
use crate::support::redis::Redis;
use crate::support::*;

/// Three instances share 50/s; each is offered 20/s for 10 s (60/s in all, so the limit
/// binds). The upstream never sees more than the rate plus the burst in any second, every
/// client gets a 200, and the limit is used to at least 95%.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_one_rate() {
    let Some(redis) = Redis::start() else { return };
    let up = start_counting().await;
    let limit = "{ rate: 50/s, burst: 5, key: token, shared: true, queue: { max_wait: 30s } }";
    let yaml = config(&redis, &up, limit, "");
    let mut instances = Vec::new();
    for _ in 0..3 {
        instances.push(start_shared(&yaml).await);
    }
    let c = client();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for n in 0..200 {
        // 200 requests per instance at 20/s each, the three interleaved.
        let at = start + Duration::from_millis(n * 50);
        for inst in &instances {
            let (c, url) = (c.clone(), inst.url("/api/v2/users"));
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep_until(at.into()).await;
                send(&c, with_token(&url, "org-token")).await.0
            }));
        }
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(
            tokio::time::timeout(Duration::from_secs(40), t)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    assert!(
        statuses.iter().all(|s| *s == 200),
        "not all 200: {statuses:?}"
    );
    // Burst 5, plus 2 for timer jitter on a loaded machine (a late wake-up bunches two).
    let most = up.max_in_window(Duration::from_secs(1));
    assert!(
        most <= 50 + 5 + 2,
        "{most} requests reached the upstream within one second"
    );
    // Between the first second (the burst) and the end of offered load, the rate is used.
    let arrivals = up.arrivals();
    let first = arrivals[0];
    let busy = arrivals
        .iter()
        .filter(|t| **t >= first + Duration::from_secs(1) && **t < first + Duration::from_secs(10))
        .count();
    assert!(
        busy as f64 >= 0.95 * 50.0 * 9.0,
        "only {busy} in 9 s at 50/s"
    );
}

/// A 429 with `Retry-After: 2` seen by one instance stops the other two for that key.
#[tokio::test]
async fn a_429_on_one_instance_pauses_the_key_on_all() {
    pause_is_shared(
        "{ rate: 100/s, burst: 10, key: token, shared: true, queue: { max_wait: 10s } }",
    )
    .await;
}

/// Three instances sharing `limit` (keyed by token): a 429 with `Retry-After: 2` through one
/// pauses that token on the other two, and no other token.
pub async fn pause_is_shared(limit: &str) {
    let Some(redis) = Redis::start() else { return };
    let up = start_counting().await;
    let yaml = config(&redis, &up, limit, "");
    let a = start_shared(&yaml).await;
    let b = start_shared(&yaml).await;
    let c2 = start_shared(&yaml).await;
    up.seen.retry_after_secs.store(2, Ordering::SeqCst);
    up.seen
        .throttle
        .lock()
        .unwrap()
        .insert("paused-token".into());
    let c = client();
    let first = tokio::spawn({
        let (c, url) = (c.clone(), a.url("/one"));
        async move { send(&c, with_token(&url, "paused-token")).await.0 }
    });
    // Wait for the 429 to reach the upstream, and a little for pacer to record the pause.
    for _ in 0..200 {
        if !up.arrivals().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let throttled_at = up.arrivals()[0];
    // The pause is written by a call pacer makes after the 429 (its bucket's `pause` field).
    let paused = || {
        let keys = redis.cli(&["--scan"]);
        keys.lines().filter(|k| !k.is_empty()).any(|k| {
            let pause = redis.cli(&["HGET", k, "pause"]);
            pause.trim().parse::<u64>().is_ok_and(|until| until > 0)
        })
    };
    super::eventually("the pause stored in Redis", paused).await;
    let others: Vec<_> = [&b, &c2]
        .into_iter()
        .map(|inst| {
            let (c, url) = (c.clone(), inst.url("/other"));
            tokio::spawn(async move { send(&c, with_token(&url, "paused-token")).await.0 })
        })
        .collect();
    // Another token is not paused.
    let free = send(&c, with_token(&b.url("/free"), "other-token")).await.0;
    assert_eq!(free, 200);
    assert_eq!(first.await.unwrap(), 200);
    for o in others {
        assert_eq!(o.await.unwrap(), 200);
    }
    let arrivals = up.arrivals();
    let early = arrivals[1..]
        .iter()
        .filter(|t| **t < throttled_at + Duration::from_millis(1900))
        .count();
    // Only the other token's request may arrive during the pause.
    assert_eq!(
        early, 1,
        "requests of the paused key reached the upstream early"
    );
    assert_eq!(arrivals.len(), 5);
}

/// `PUT /limits/l` on one instance is in force on the others within a second.
#[tokio::test]
async fn a_live_change_on_one_instance_reaches_all() {
    let Some(redis) = Redis::start() else { return };
    let up = start_counting().await;
    let limit = "{ rate: 50/s, burst: 5, mode: reject, shared: true }";
    let yaml = config(&redis, &up, limit, "");
    let a = start_shared(&yaml).await;
    let b = start_shared(&yaml).await;
    let c = client();
    let put = request("PUT", &format!("http://{}/limits/l", a.admin))
        .body(Full::from(r#"{"rate": "1/min", "burst": 1}"#))
        .unwrap();
    assert_eq!(send(&c, put).await.0, 200);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (_, _, body) = get(&c, &format!("http://{}/status", b.admin)).await;
    let status = json(&body);
    let l = &status["limits"][0];
    assert!(
        (l["effective_rate"].as_f64().unwrap() - 1.0 / 60.0).abs() < 1e-6,
        "{l}"
    );
    assert_eq!(l["burst"], 1, "{l}");
    assert_eq!(l["shared"]["mode"], "shared", "{l}");
    // And requests through the other instance meet the new rate: one passes, the next is refused.
    assert_eq!(get(&c, &b.url("/x")).await.0, 200);
    let (status, _, body) = get(&c, &b.url("/x")).await;
    assert_eq!(status, 429);
    assert_eq!(json(&body)["code"], "pacer.rate.limited");
}

/// A cap cannot be added live to a shared limit that has none: refused, and nothing changes.
#[tokio::test]
async fn a_live_cap_on_a_shared_limit_without_one_is_refused() {
    let Some(redis) = Redis::start() else { return };
    let up = start_counting().await;
    let yaml = config(&redis, &up, "{ rate: 50/s, shared: true }", "");
    let a = start_shared(&yaml).await;
    let c = client();
    let put = request("PUT", &format!("http://{}/limits/l", a.admin))
        .body(Full::from(r#"{"concurrency": 2}"#))
        .unwrap();
    let (status, _, body) = send(&c, put).await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("add concurrency to the config"));
    let (_, _, body) = get(&c, &format!("http://{}/status", a.admin)).await;
    assert!(json(&body)["limits"][0]["concurrency"].is_null());
}

/// AIMD on a shared limit: a 429 through one instance cuts the rate of every instance.
#[tokio::test]
async fn an_adaptive_cut_on_one_instance_slows_all() {
    let Some(redis) = Redis::start() else { return };
    let up = start_counting().await;
    let limit =
        "{ rate: 100/s, key: token, shared: true, adaptive: { factor: 0.5, interval: 1h } }";
    let yaml = config(&redis, &up, limit, "");
    let a = start_shared(&yaml).await;
    let b = start_shared(&yaml).await;
    up.seen.retry_after_secs.store(1, Ordering::SeqCst);
    up.seen.throttle.lock().unwrap().insert("cut-token".into());
    let c = client();
    assert_eq!(send(&c, with_token(&a.url("/x"), "cut-token")).await.0, 200);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (_, _, body) = get(&c, &format!("http://{}/status", b.admin)).await;
    let l = &json(&body)["limits"][0];
    assert_eq!(l["rate"], 100.0, "{l}");
    let effective = l["effective_rate"].as_f64().unwrap();
    assert!((effective - 50.0).abs() < 0.01, "{l}");
}
