//! Shaping end to end: pacer in front of the mock, limits binding for real.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;

use crate::support::*;

fn with_token(method: &str, url: &str, token: &str) -> http::Request<Full<Bytes>> {
    request(method, url)
        .header("authorization", format!("Bearer {token}"))
        .body(Full::default())
        .unwrap()
}

const SLOW_LIMIT: &str = "
upstreams:
  mock: { base_url: 'http://{mock}' }
limits:
  slow: { rate: 1/min, burst: 1, queue: { max_depth: 10, max_wait: 60s } }
routes:
  - { match: 'GET /api/v2/**', limits: [slow] }
";

#[tokio::test]
async fn queued_requests_leave_in_arrival_order() {
    let mock = open_mock().await;
    // A long max_wait, so the queued requests are not refused early while the rate is slow.
    let yaml = SLOW_LIMIT.replace("max_wait: 60s", "max_wait: 1h");
    let (pacer, limits) = start_pacer_limits(&yaml, mock.addr).await;
    let c = client();
    // The first takes the only token for a minute; each later one is sent once the previous is
    // queued, so the arrival order is known. Then the rate is raised and the queue drains.
    let first = get(&c, &pacer.url("/api/v2/users?n=0")).await;
    assert_eq!(first.0, 200);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for n in 1..=5 {
        let (c, tx) = (c.clone(), tx.clone());
        let url = pacer.url(&format!("/api/v2/users?n={n}"));
        tokio::spawn(async move {
            let (status, _, _) = get(&c, &url).await;
            tx.send((n, status)).unwrap();
        });
        wait_for_limit(&limits, "slow", |s| s.queue_depth == n).await;
    }
    let faster = pacer::shape::LimitUpdate {
        rate: Some(pacer::config::Rate {
            count: 50,
            per: Duration::from_secs(1),
        }),
        ..Default::default()
    };
    limits.by_name("slow").unwrap().update(faster).unwrap();
    let mut order = Vec::new();
    for _ in 1..=5 {
        let (n, status) = rx.recv().await.unwrap();
        assert_eq!(status, 200);
        order.push(n);
    }
    assert_eq!(order, [1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn a_full_queue_answers_429_queue_full_with_retry_after() {
    let mock = open_mock().await;
    let yaml = SLOW_LIMIT.replace("max_depth: 10", "max_depth: 1");
    let (pacer, limits) = start_pacer_limits(&yaml, mock.addr).await;
    let c = client();
    assert_eq!(get(&c, &pacer.url("/api/v2/users")).await.0, 200);
    let queued = tokio::spawn({
        let (c, url) = (c.clone(), pacer.url("/api/v2/users"));
        async move { get(&c, &url).await.0 }
    });
    wait_for_limit(&limits, "slow", |s| s.queue_depth == 1).await;
    let (status, headers, body) = get(&c, &pacer.url("/api/v2/users")).await;
    assert_eq!(status, 429);
    assert_eq!(json(&body)["code"], "pacer.queue.full");
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=120).contains(&wait), "retry-after {wait}");
    queued.abort();
}

#[tokio::test]
async fn a_request_that_cannot_start_in_time_is_refused_at_once() {
    let mock = open_mock().await;
    let yaml = SLOW_LIMIT.replace("max_wait: 60s", "max_wait: 2s");
    let (pacer, _limits) = start_pacer_limits(&yaml, mock.addr).await;
    let c = client();
    assert_eq!(get(&c, &pacer.url("/api/v2/users")).await.0, 200);
    // The next token is a minute away, far past max_wait: known now, so answered now.
    let started = std::time::Instant::now();
    let (status, headers, body) = get(&c, &pacer.url("/api/v2/users")).await;
    assert_eq!(status, 429);
    assert_eq!(json(&body)["code"], "pacer.queue.timeout");
    assert!(headers.contains_key("retry-after"));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "refused early, not after max_wait"
    );
}

#[tokio::test]
async fn reject_mode_answers_429_rate_limited() {
    let mock = open_mock().await;
    let yaml = SLOW_LIMIT.replace("burst: 1,", "burst: 1, mode: reject,");
    let (pacer, _limits) = start_pacer_limits(&yaml, mock.addr).await;
    let c = client();
    assert_eq!(get(&c, &pacer.url("/api/v2/users")).await.0, 200);
    let (status, headers, body) = get(&c, &pacer.url("/api/v2/users")).await;
    assert_eq!(status, 429);
    assert_eq!(json(&body)["code"], "pacer.rate.limited");
    assert!(headers.contains_key("retry-after"));
    assert_eq!(mock_stats(&mock).await["requests_total"], 1);
}

#[tokio::test]
async fn observe_mode_holds_nothing_back() {
    let mock = open_mock().await;
    let yaml = SLOW_LIMIT.replace("burst: 1,", "burst: 1, mode: observe,");
    let (pacer, _limits) = start_pacer_limits(&yaml, mock.addr).await;
    let c = client();
    for _ in 0..5 {
        assert_eq!(get(&c, &pacer.url("/api/v2/users")).await.0, 200);
    }
    assert_eq!(mock_stats(&mock).await["requests_total"], 5);
}

#[tokio::test]
async fn tokens_are_isolated_and_keys_are_bounded() {
    let mock = open_mock().await;
    let yaml = "
upstreams:
  mock: { base_url: 'http://{mock}' }
limits:
  per-token: { rate: 1/min, key: token, mode: reject, max_keys: 2 }
routes:
  - { match: '* /api/v2/**', limits: [per-token] }
";
    let (pacer, _limits) = start_pacer_limits(yaml, mock.addr).await;
    let c = client();
    let url = pacer.url("/api/v2/users");
    assert_eq!(send(&c, with_token("GET", &url, "alice")).await.0, 200);
    assert_eq!(send(&c, with_token("GET", &url, "alice")).await.0, 429);
    // Bob has his own bucket: alice's exhaustion does not touch him.
    assert_eq!(send(&c, with_token("GET", &url, "bob")).await.0, 200);
    // A third live key is past max_keys: refused, never unbounded memory.
    let (status, _, body) = send(&c, with_token("GET", &url, "carol")).await;
    assert_eq!(status, 503);
    assert_eq!(json(&body)["code"], "pacer.keys.exhausted");
}

#[tokio::test]
async fn a_client_that_leaves_the_queue_frees_its_place() {
    let mock = open_mock().await;
    let yaml = SLOW_LIMIT.replace("max_depth: 10", "max_depth: 1");
    let (pacer, limits) = start_pacer_limits(&yaml, mock.addr).await;
    let c = client();
    assert_eq!(get(&c, &pacer.url("/api/v2/users")).await.0, 200);
    // A raw connection queues a request, then hangs up.
    let mut stream = tokio::net::TcpStream::connect(pacer.addr).await.unwrap();
    use tokio::io::AsyncWriteExt;
    stream
        .write_all(b"GET /api/v2/users HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    wait_for_limit(&limits, "slow", |s| s.queue_depth == 1).await;
    drop(stream);
    wait_for_limit(&limits, "slow", |s| s.queue_depth == 0).await;
    // Its place is free again: a newcomer queues instead of getting queue.full.
    let queued = tokio::spawn({
        let (c, url) = (c.clone(), pacer.url("/api/v2/users"));
        async move { get(&c, &url).await.0 }
    });
    wait_for_limit(&limits, "slow", |s| s.queue_depth == 1).await;
    queued.abort();
    assert_eq!(mock_stats(&mock).await["requests_total"], 1);
}

#[tokio::test]
async fn several_limits_on_one_route_all_apply() {
    let mock = start_mock(pacer::mock::MockConfig {
        default_limit: None,
        latency: Duration::from_millis(30),
        ..Default::default()
    })
    .await;
    let yaml = "
upstreams:
  mock: { base_url: 'http://{mock}' }
limits:
  one-at-a-time: { concurrency: 1 }
  per-token: { rate: 100/s, burst: 5, key: token }
routes:
  - { match: 'POST /api/v2/analytics/**', limits: [per-token, one-at-a-time] }
";
    let (pacer, _limits) = start_pacer_limits(yaml, mock.addr).await;
    let c = client();
    let url = pacer.url("/api/v2/analytics/conversations/details/query");
    let mut tasks = Vec::new();
    for i in 0..10 {
        let (c, url) = (c.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            send(&c, with_token("POST", &url, &format!("t{}", i % 2)))
                .await
                .0
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let stats = mock_stats(&mock).await;
    assert_eq!(stats["requests_total"], 10);
    assert_eq!(
        stats["max_in_flight"], 1,
        "the concurrency cap held: {stats}"
    );
}

/// A client that hangs up while its request is at the API cannot be told from one that
/// half-closed, and the API works on the request either way: its slot frees when the answer
/// comes or `timeouts.request` passes, not at once. The API here would answer after 30 s, so
/// the slot frees by the 1 s timeout, no sooner.
#[tokio::test]
async fn a_client_that_leaves_while_in_flight_frees_its_slot() {
    let mock = start_mock(pacer::mock::MockConfig {
        default_limit: None,
        latency: Duration::from_secs(30),
        ..Default::default()
    })
    .await;
    let yaml = "
upstreams:
  mock: { base_url: 'http://{mock}', timeouts: { request: 1s } }
limits:
  one: { concurrency: 1 }
routes:
  - { match: '* /api/v2/**', limits: [one] }
";
    let (pacer, limits) = start_pacer_limits(yaml, mock.addr).await;
    let mut stream = tokio::net::TcpStream::connect(pacer.addr).await.unwrap();
    use tokio::io::AsyncWriteExt;
    let sent = tokio::time::Instant::now();
    stream
        .write_all(b"GET /api/v2/users HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    wait_for_limit(&limits, "one", |s| s.in_flight == 1).await;
    drop(stream);
    // Waits 5 s at most, far less than the API's 30 s: the timeout frees the slot.
    wait_for_limit(&limits, "one", |s| s.in_flight == 0).await;
    let held = sent.elapsed();
    assert!(
        held >= Duration::from_millis(950),
        "the slot was held until timeouts.request, not freed at the hang-up: {held:?}"
    );
}

#[tokio::test]
async fn responses_that_queued_say_how_long() {
    let mock = open_mock().await;
    let yaml = SLOW_LIMIT.replace("1/min", "10/s");
    let (pacer, _limits) = start_pacer_limits(&yaml, mock.addr).await;
    let c = client();
    let (_, first, _) = get(&c, &pacer.url("/api/v2/users")).await;
    assert!(
        !first.contains_key("x-pacer-queued-ms"),
        "the first did not wait"
    );
    let (status, second, _) = get(&c, &pacer.url("/api/v2/users")).await;
    assert_eq!(status, 200);
    let ms: u64 = second["x-pacer-queued-ms"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (20..=200).contains(&ms),
        "waited about one 100 ms interval: {ms}"
    );
}
