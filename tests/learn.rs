//! `learn: true`: pacer reads the API's rate-limit headers and paces each key to them before
//! the first 429. Paused tokio time: the mock, pacer and the clients share one clock that jumps
//! ahead while everything waits, so 20 s of load take a moment and the counts are exact.

mod support;

use std::time::Duration;

use http_body_util::Full;
use pacer::mock::{HeaderFamily, MockConfig, WindowLimit};
use support::*;
use tokio::time::Instant;

/// The platform's contract at test scale: 30 requests per 6 s per token, with `family` headers.
fn platform(family: HeaderFamily) -> MockConfig {
    MockConfig {
        default_limit: Some(WindowLimit {
            requests: 30,
            window: Duration::from_secs(6),
        }),
        ratelimit_headers: family,
        ..Default::default()
    }
}

/// No rate: the limit is what the API says.
const LEARN: &str = "
upstreams:
  api: { base_url: 'http://{mock}' }
limits:
  per-token: { learn: true, key: token, queue: { max_wait: 60s } }
routes:
  - { match: '* /api/v2/**', limits: [per-token] }
";

/// What a run saw: the clients' statuses, and the mock's counters when the offer ended and
/// when every answer was in.
struct Run {
    statuses: Vec<u16>,
    accepted_in_offer: u64,
    throttled: u64,
}

/// Offers `per_second` requests per second of one token for `length`, each in its own task.
async fn offer(pacer: &Running, mock: &Running, per_second: u32, length: Duration) -> Run {
    let client = client();
    let mut tick = tokio::time::interval(Duration::from_secs(1) / per_second);
    let start = Instant::now();
    let mut tasks = Vec::new();
    while start.elapsed() < length {
        tick.tick().await;
        let req = request("GET", &pacer.url("/api/v2/users"))
            .header("authorization", "Bearer agent-1")
            .body(Full::default())
            .unwrap();
        let client = client.clone();
        tasks.push(tokio::spawn(
            async move { send(&client, req).await.0.as_u16() },
        ));
    }
    let at_end = mock_stats(mock).await;
    let accepted = |s: &serde_json::Value| {
        s["requests_total"].as_u64().unwrap() - s["throttled_total"].as_u64().unwrap()
    };
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let done = mock_stats(mock).await;
    Run {
        statuses,
        accepted_in_offer: accepted(&at_end),
        throttled: done["throttled_total"].as_u64().unwrap(),
    }
}

/// Twice the advertised limit for 20 s: no 429 from the first request on, only 200s for the
/// clients, and at least 95% of the advertised 100 requests in 20 s through.
async fn learns_from(family: HeaderFamily) {
    let mock = start_mock(platform(family)).await;
    let pacer = start_pacer(LEARN, mock.addr).await;
    let run = offer(&pacer, &mock, 10, Duration::from_secs(20)).await;
    assert_eq!(run.throttled, 0, "{family:?}: upstream 429s");
    assert!(
        run.statuses.iter().all(|&s| s == 200),
        "{family:?}: clients got {:?}",
        run.statuses
            .iter()
            .filter(|&&s| s != 200)
            .collect::<Vec<_>>()
    );
    assert!(
        run.accepted_in_offer >= 95,
        "{family:?}: {} of the advertised 100 in 20 s",
        run.accepted_in_offer
    );
}

#[tokio::test(start_paused = true)]
async fn genesys_headers_pace_a_limit_without_a_rate() {
    learns_from(HeaderFamily::Genesys).await;
}

#[tokio::test(start_paused = true)]
async fn x_ratelimit_headers_pace_a_limit_without_a_rate() {
    learns_from(HeaderFamily::X).await;
}

#[tokio::test(start_paused = true)]
async fn structured_ietf_headers_pace_a_limit_without_a_rate() {
    learns_from(HeaderFamily::IetfStructured).await;
}

#[tokio::test(start_paused = true)]
async fn first_generation_ietf_headers_pace_a_limit_without_a_rate() {
    learns_from(HeaderFamily::Ietf).await;
}

/// The comparison: the same API, not learning, AIMD on a rate set at what the load offers.
/// pacer finds the limit only by drawing 429s.
#[tokio::test(start_paused = true)]
async fn without_learning_adaptive_draws_429s() {
    let mock = start_mock(platform(HeaderFamily::Genesys)).await;
    let yaml = LEARN.replace("learn: true", "rate: 10/s, adaptive: true");
    let pacer = start_pacer(&yaml, mock.addr).await;
    let run = offer(&pacer, &mock, 10, Duration::from_secs(20)).await;
    assert!(run.throttled > 0, "AIMD learns only from 429s");
}
