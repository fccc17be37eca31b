//! `learn: true`: pacer reads the API's rate-limit headers and paces each key to them before
//! the first 429. Paused tokio time: the mock, pacer and the clients share one clock that jumps
//! ahead while everything waits, so 20 s of load take a moment and the counts are exact.

mod options;

use std::time::Duration;

use http_body_util::Full;
use pacer::mock::{HeaderFamily, MockConfig, WindowLimit};
use tokio::time::Instant;

use crate::support::*;

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
    learns_with(family, LEARN).await;
}

/// [`learns_from`] with the config `yaml`; what the run saw.
async fn learns_with(family: HeaderFamily, yaml: &str) -> Run {
    let mock = start_mock(platform(family)).await;
    let pacer = start_pacer(yaml, mock.addr).await;
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
    run
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

// === headers that lie ===

/// An API that accepts everything and answers request `n` with the headers `lie(n)` gives,
/// recording when each request arrived.
struct Liar {
    addr: std::net::SocketAddr,
    arrivals: std::sync::Arc<std::sync::Mutex<Vec<Instant>>>,
    task: tokio::task::JoinHandle<()>,
}

type Lie = fn(usize) -> Vec<(&'static str, String)>;

impl Drop for Liar {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Liar {
    async fn start(lie: Lie) -> Liar {
        use hyper::body::Incoming;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let arrivals = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = arrivals.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = seen.clone();
                let service = hyper::service::service_fn(move |_req: http::Request<Incoming>| {
                    let n = {
                        let mut seen = seen.lock().unwrap();
                        seen.push(Instant::now());
                        seen.len() - 1
                    };
                    let mut res = http::Response::new(Full::new(bytes::Bytes::new()));
                    for (name, value) in lie(n) {
                        if let Ok(v) = http::HeaderValue::from_str(&value) {
                            res.headers_mut().append(name, v);
                        }
                    }
                    async move { Ok::<_, std::convert::Infallible>(res) }
                });
                tokio::spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        Liar {
            addr,
            arrivals,
            task,
        }
    }
}

/// A ceiling of 5/s, learning.
const CEILING: &str = "
upstreams:
  api: { base_url: 'http://{liar}' }
limits:
  per-token: { rate: 5/s, learn: true, key: token, queue: { max_wait: 60s } }
routes:
  - { match: '* /api/v2/**', limits: [per-token] }
";

/// Offers `count` requests at 10/s through the ceiling to an API that lies: every client gets a
/// 200, no second ever holds more than the ceiling lets go, and no gap between releases is
/// longer than `longest` (the longest reset the lies told, or the ceiling's own interval).
/// Hands back when each request reached the API.
async fn stays_sane(lie: Lie, count: usize, longest: Duration) -> Vec<Instant> {
    let liar = Liar::start(lie).await;
    let pacer = start_pacer(&CEILING.replace("{liar}", "{mock}"), liar.addr).await;
    let client = client();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut tasks = Vec::new();
    for _ in 0..count {
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
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let arrivals = liar.arrivals.lock().unwrap().clone();
    assert_eq!(arrivals.len(), count);
    for (i, at) in arrivals.iter().enumerate() {
        // rate 5/s with a bucket of 1: at most 5 in any second, plus the one at its start.
        let within = arrivals[i..]
            .iter()
            .take_while(|&&t| t - *at < Duration::from_secs(1))
            .count();
        assert!(within <= 6, "{within} releases in one second from #{i}");
    }
    let gap = arrivals.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(
        gap <= longest + Duration::from_millis(50),
        "stalled {gap:?}"
    );
    arrivals
}

fn genesys(allowed: &str, count: &str, reset: &str) -> Vec<(&'static str, String)> {
    vec![
        ("inin-ratelimit-allowed", allowed.to_owned()),
        ("inin-ratelimit-count", count.to_owned()),
        ("inin-ratelimit-reset", reset.to_owned()),
    ]
}

/// Every fourth answer says 1 left for 2 s, the others that 30 are left: the budget keeps the
/// lower, so after each "1 left" one more request goes and the next waits (believing the 30
/// would send it at the ceiling's 200 ms) until the window ends: the earliest end any answer in
/// it told, never later than the 2 s the "1 left" said.
#[tokio::test(start_paused = true)]
async fn remaining_that_rises_mid_window_is_not_believed_and_the_stall_ends_at_the_reset() {
    let arrivals = stays_sane(
        |n| match n % 4 {
            0 => genesys("30", "29", "2"),
            _ => genesys("30", "0", "2"),
        },
        20,
        Duration::from_secs(2),
    )
    .await;
    for told in (0..arrivals.len() - 2).step_by(4) {
        let stall = arrivals[told + 2] - arrivals[told + 1];
        let since = arrivals[told + 2] - arrivals[told];
        assert!(
            stall >= Duration::from_secs(1) && since <= Duration::from_millis(2050),
            "#{told} said 1 left for 2 s; #{} went {stall:?} after #{}, {since:?} after it",
            told + 2,
            told + 1,
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_reset_in_the_past_does_not_stall() {
    stays_sane(
        |_| {
            vec![
                ("x-ratelimit-limit", "30".to_owned()),
                ("x-ratelimit-remaining", "0".to_owned()),
                ("x-ratelimit-reset", "1000000001".to_owned()),
            ]
        },
        100,
        Duration::from_millis(200),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn negative_huge_and_garbage_values_count_as_absent() {
    stays_sane(
        |n| match n % 3 {
            0 => genesys("-30", "-1", "-5"),
            1 => genesys("30", "30", "99999999999"),
            _ => genesys("soon", "many", "later"),
        },
        100,
        Duration::from_millis(200),
    )
    .await;
}
