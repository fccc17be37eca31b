//! Shared quotas: `quota.lua` on a fixed clock, and three instances sharing one quota.

use std::time::{Duration, Instant};

use super::*;
use crate::support::counting::start_counting;
use crate::support::redis::Redis;
use crate::support::*;

/// One call of the script with a fixed clock: 3 per 1000 µs, margin 50.
async fn call(
    conn: &mut ::redis::aio::MultiplexedConnection,
    now: u64,
    op: &str,
    arg: u64,
) -> (u8, u64, u64, u64, u64) {
    let script = ::redis::Script::new(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/shape/shared/quota.lua"
    )));
    script
        .prepare_invoke()
        .key("q")
        .key("q:params")
        .key("q:log")
        .arg(op)
        .arg(now)
        .arg(3)
        .arg(1_000)
        .arg(50)
        .arg(arg)
        .invoke_async(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_script_keeps_every_window_within_the_quota() {
    let Some(redis) = Redis::start() else { return };
    let client = ::redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    // A whole quota at once.
    for seq in 1..=3 {
        assert_eq!(call(&mut conn, 500, "reserve", 0).await, (1, 0, seq, 3, 0));
    }
    // Reject mode (no wait accepted) does not reserve the fourth; queue mode waits a span.
    assert_eq!(call(&mut conn, 600, "reserve", 0).await, (0, 950, 0, 3, 0));
    assert_eq!(
        call(&mut conn, 600, "reserve", 949).await,
        (0, 950, 0, 3, 0)
    );
    assert_eq!(
        call(&mut conn, 600, "reserve", 950).await,
        (1, 950, 4, 3, 0)
    );
    // The log keeps N releases; the fifth goes a span after the second.
    assert_eq!(redis.cli(&["ZCARD", "q:log"]).trim(), "3");
    assert_eq!(
        call(&mut conn, 600, "reserve", 5_000).await,
        (1, 950, 5, 3, 0)
    );
    // Giving the last one back lets the next take its place, and no earlier.
    assert_eq!(call(&mut conn, 600, "release", 5).await.0, 1);
    assert_eq!(call(&mut conn, 600, "release", 5).await.0, 0);
    assert_eq!(
        call(&mut conn, 600, "reserve", 5_000).await,
        (1, 950, 6, 3, 0)
    );
    // With fewer than N left after giving back, the trimmed release still counts.
    assert_eq!(call(&mut conn, 600, "release", 6).await.0, 1);
    assert_eq!(call(&mut conn, 600, "release", 4).await.0, 1);
    assert_eq!(
        call(&mut conn, 600, "reserve", 5_000).await,
        (1, 950, 7, 3, 0)
    );
    // A pause: the first release at its end, the next ones window / N apart.
    let paused = call(&mut conn, 2_000, "pause", 3_000).await;
    assert_eq!(paused, (1, 0, 0, 3, 3_000));
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(call(&mut conn, 2_000, "reserve", 10_000).await.1);
    }
    assert_eq!(got, vec![3_000, 3_333, 3_666, 4_050]);
    // Keys expire.
    let ttl: i64 = redis.cli(&["PTTL", "q:log"]).trim().parse().unwrap();
    assert!(ttl > 0, "the log has no expiry: {ttl}");
}

/// Three instances share `quota: 30/2s`, offered 3 × 7/s for 6 s (more than 15/s): no window of
/// 2 s holds more than 30 at the upstream, every client gets a 200, and the quota is used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_one_quota() {
    let Some(redis) = Redis::start() else { return };
    let up = start_counting().await;
    // A margin of 150 ms absorbs timer and loopback jitter on a loaded machine.
    let limit =
        "{ quota: 30/2s, margin: 150ms, key: token, shared: true, queue: { max_wait: 30s } }";
    let yaml = config(&redis, &up, limit, "");
    let mut instances = Vec::new();
    for _ in 0..3 {
        instances.push(start_shared(&yaml).await);
    }
    let c = client();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for n in 0..42 {
        let at = start + Duration::from_millis(n * 1000 / 7);
        for inst in &instances {
            let (c, url) = (c.clone(), inst.url("/api/v2/users"));
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep_until(at.into()).await;
                send(&c, with_token(&url, "quota-token")).await.0
            }));
        }
    }
    let mut statuses = Vec::new();
    for t in tasks {
        let status = tokio::time::timeout(Duration::from_secs(40), t).await;
        statuses.push(status.unwrap().unwrap());
    }
    assert!(
        statuses.iter().all(|s| *s == 200),
        "not all 200: {statuses:?}"
    );
    let most = up.max_in_window(Duration::from_secs(2));
    assert!(
        most <= 30,
        "{most} requests reached the upstream within 2 s"
    );
    // Three spans (window + margin) from the first release hold three quotas' worth.
    let arrivals = up.arrivals();
    let first = arrivals[0];
    let used = arrivals
        .iter()
        .filter(|t| **t < first + Duration::from_millis(3 * 2_150))
        .count();
    assert!(
        used as f64 >= 0.95 * 90.0,
        "only {used} of 90 in three spans"
    );
}

/// A 429 with `Retry-After: 2` through one instance pauses the quota's key on the other two.
#[tokio::test]
async fn a_429_pauses_a_shared_quota_on_every_instance() {
    let limit = "{ quota: 100/s, key: token, shared: true, queue: { max_wait: 10s } }";
    super::rate::pause_is_shared(limit).await;
}

/// `PUT /limits/l` with a quota on one instance is in force on the others within a second.
#[tokio::test]
async fn a_live_quota_change_reaches_every_instance() {
    let Some(redis) = Redis::start() else { return };
    let up = start_counting().await;
    let limit = "{ quota: 100/s, mode: reject, shared: true }";
    let yaml = config(&redis, &up, limit, "");
    let a = start_shared(&yaml).await;
    let b = start_shared(&yaml).await;
    let c = client();
    let put = request("PUT", &format!("http://{}/limits/l", a.admin))
        .body(Full::from(r#"{"quota": "1/min"}"#))
        .unwrap();
    assert_eq!(send(&c, put).await.0, 200);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (_, _, body) = get(&c, &format!("http://{}/status", b.admin)).await;
    let l = &json(&body)["limits"][0];
    assert_eq!(l["quota"]["count"], 1, "{l}");
    assert_eq!(l["quota"]["window_ms"], 60_000, "{l}");
    assert_eq!(get(&c, &b.url("/x")).await.0, 200);
    let (status, _, body) = get(&c, &b.url("/x")).await;
    assert_eq!(status, 429);
    assert_eq!(json(&body)["code"], "pacer.rate.limited");
}
