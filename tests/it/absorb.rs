//! Absorbing upstream 429s end to end: the mock limits like the platform, pacer retries.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use pacer::mock::{MockConfig, RetryAfterMode, WindowLimit};
use sha2::{Digest, Sha256};

use crate::support::*;

/// The platform's contract, shrunk to test scale: `requests` per `window` per token.
fn platform(requests: u32, window_ms: u64, retry_after: RetryAfterMode) -> MockConfig {
    MockConfig {
        default_limit: Some(WindowLimit {
            requests,
            window: Duration::from_millis(window_ms),
        }),
        retry_after,
        ..Default::default()
    }
}

/// pacer with a per-token limit set far too high, so 429s do reach it and must be absorbed.
const TOO_HIGH: &str = "
upstreams:
  mock: { base_url: 'http://{mock}' }
limits:
  per-token: { rate: 1000/s, burst: 100, key: token, queue: { max_wait: 30s } }
routes:
  - { match: '* /api/v2/**', limits: [per-token] }
retry:
  max_attempts: 10
  backoff: { base: 50ms, max: 400ms }
";

fn with_token(method: &str, url: &str, body: Bytes) -> http::Request<Full<Bytes>> {
    request(method, url)
        .header("authorization", "Bearer load-test-token")
        .body(Full::new(body))
        .unwrap()
}

#[tokio::test]
async fn no_429_reaches_a_client_that_sends_more_than_the_limit() {
    let mock = start_mock(platform(5, 1000, RetryAfterMode::Normal)).await;
    // 20/s against a platform allowing 5 per second: pacer sends into 429s unless it pauses.
    let yaml = TOO_HIGH.replace("rate: 1000/s, burst: 100", "rate: 20/s, burst: 1");
    let pacer = start_pacer(&yaml, mock.addr).await;
    let c = client();
    let url = pacer.url("/api/v2/scripts");
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let (c, url) = (c.clone(), url.clone());
            tokio::spawn(async move { send(&c, with_token("GET", &url, Bytes::new())).await })
        })
        .collect();
    let mut retried = 0;
    for t in tasks {
        let (status, headers, _) = t.await.unwrap();
        assert_eq!(status, 200, "{headers:?}");
        retried += u32::from(headers.contains_key("x-pacer-retries"));
    }
    let stats = mock_stats(&mock).await;
    assert!(
        stats["throttled_total"].as_u64().unwrap() >= 1,
        "the mock did push back: {stats}"
    );
    assert!(retried >= 1, "some responses say they were retried");
    // The pause is bucket-wide: after a 429, queued siblings wait out the Retry-After instead
    // of each collecting their own (without it, every 50 ms slot left in a window would 429).
    assert!(stats["throttled_total"].as_u64().unwrap() <= 3, "{stats}");
}

#[tokio::test]
async fn a_replayed_body_arrives_identical() {
    let mock = start_mock(platform(1, 1000, RetryAfterMode::Normal)).await;
    let pacer = start_pacer(TOO_HIGH, mock.addr).await;
    let c = client();
    let url = pacer.url("/api/v2/analytics/conversations/details/query");
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    let digest: String = Sha256::digest(&body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    // The first uses up the window; the second gets a 429 and is replayed after it.
    assert_eq!(
        send(&c, with_token("POST", &url, Bytes::from_static(b"{}")))
            .await
            .0,
        200
    );
    let (status, headers, _) = send(&c, with_token("POST", &url, Bytes::from(body))).await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-pacer-retries"], "1");
    assert_eq!(headers["x-mock-received-sha256"], digest.as_str());
}

#[tokio::test]
async fn missing_or_garbage_retry_after_falls_back_to_backoff() {
    for mode in [RetryAfterMode::Omit, RetryAfterMode::Garbage] {
        let mock = start_mock(platform(1, 500, mode)).await;
        let pacer = start_pacer(TOO_HIGH, mock.addr).await;
        let c = client();
        let url = pacer.url("/api/v2/users");
        assert_eq!(send(&c, with_token("GET", &url, Bytes::new())).await.0, 200);
        let (status, headers, _) = send(&c, with_token("GET", &url, Bytes::new())).await;
        assert_eq!(status, 200, "{mode:?}");
        assert!(headers.contains_key("x-pacer-retries"), "{mode:?}");
    }
}

#[tokio::test]
async fn a_huge_retry_after_is_handed_back_at_once_and_pauses_the_key_for_max_pause() {
    let mock = start_mock(platform(1, 60_000, RetryAfterMode::Huge)).await;
    let pacer = start_pacer(TOO_HIGH, mock.addr).await;
    let c = client();
    let url = pacer.url("/api/v2/users");
    assert_eq!(send(&c, with_token("GET", &url, Bytes::new())).await.0, 200);
    let started = std::time::Instant::now();
    let (status, headers, body) = send(&c, with_token("GET", &url, Bytes::new())).await;
    assert_eq!(status, 429);
    assert_eq!(headers["x-pacer-gave-up"], "retry_after_too_long");
    assert_eq!(headers["retry-after"], "3600");
    assert!(
        headers.contains_key("inin-correlation-id"),
        "the platform's headers pass through"
    );
    assert_eq!(json(&body)["code"], "too.many.requests.retry.after");
    assert!(started.elapsed() < Duration::from_secs(2));
    // The key is paused now, for max_pause (by default max_retry_after, 60 s) rather than the
    // 3600 s asked: the next request (max_wait 30 s) is answered by pacer, the API not called.
    let (status, headers, body) = send(&c, with_token("GET", &url, Bytes::new())).await;
    assert_eq!(status, 429);
    assert_eq!(json(&body)["code"], "pacer.queue.timeout");
    let left: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(
        (25..=30).contains(&left),
        "retry-after is when a request with the same max_wait could make it: {left}"
    );
    assert_eq!(mock_stats(&mock).await["requests_total"], 2);
}

#[tokio::test]
async fn a_body_too_large_to_buffer_is_never_retried() {
    let mock = start_mock(platform(1, 1000, RetryAfterMode::Normal)).await;
    let yaml = TOO_HIGH.replace("max_attempts: 10", "max_attempts: 10\n  max_body: 1000");
    let pacer = start_pacer(&yaml, mock.addr).await;
    let c = client();
    let url = pacer.url("/api/v2/flows/f1");
    assert_eq!(send(&c, with_token("PUT", &url, Bytes::new())).await.0, 200);
    let (status, headers, _) =
        send(&c, with_token("PUT", &url, Bytes::from(vec![7u8; 5000]))).await;
    assert_eq!(status, 429);
    assert_eq!(headers["x-pacer-gave-up"], "body_not_replayable");
}

#[tokio::test]
async fn server_errors_are_retried_only_for_idempotent_methods() {
    let mock = start_mock(MockConfig::default()).await;
    let yaml = "
upstreams:
  mock: { base_url: 'http://{mock}' }
retry:
  max_attempts: 3
  backoff: { base: 10ms, max: 20ms }
";
    let pacer = start_pacer(yaml, mock.addr).await;
    let c = client();
    let url = pacer.url("/__mock/status/503");
    let (status, headers, _) = send(&c, with_token("GET", &url, Bytes::new())).await;
    assert_eq!(status, 503);
    assert_eq!(headers["x-pacer-gave-up"], "attempts_exhausted");
    assert_eq!(headers["x-pacer-retries"], "2");
    let (status, headers, _) = send(&c, with_token("POST", &url, Bytes::new())).await;
    assert_eq!(status, 503);
    assert!(
        !headers.contains_key("x-pacer-retries"),
        "POST is not retried on 5xx"
    );
}

#[tokio::test]
async fn a_wait_past_the_queue_deadline_gives_up_with_the_platforms_429() {
    // The platform asks for a wait of about 5 s; the route allows 1 s of waiting in all.
    let mock = start_mock(platform(1, 5000, RetryAfterMode::Normal)).await;
    let yaml = TOO_HIGH.replace("max_wait: 30s", "max_wait: 1s");
    let pacer = start_pacer(&yaml, mock.addr).await;
    let c = client();
    let url = pacer.url("/api/v2/users");
    assert_eq!(send(&c, with_token("GET", &url, Bytes::new())).await.0, 200);
    let (status, headers, body) = send(&c, with_token("GET", &url, Bytes::new())).await;
    assert_eq!(status, 429);
    assert_eq!(headers["x-pacer-gave-up"], "deadline");
    assert_eq!(json(&body)["code"], "too.many.requests.retry.after");
}
