//! Quotas against a fixed-window API, bounded pauses with a probe, and Retry-After units, end to
//! end through pacer. Paused tokio time: the upstream, pacer and the clients share one clock that
//! jumps ahead while everything waits, so a minute of load takes a few real seconds and the
//! instants asserted are exact.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::time::Instant;

use crate::support::*;

/// How the upstream answers a request of `token` at `now`: None for 200, or a 429 with this
/// `Retry-After` value.
type Rule = Box<dyn Fn(&str, Instant) -> Option<String> + Send + Sync>;

/// An API that answers by `rule` and records every request: (token, arrival, status).
struct Api {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<(String, Instant, u16)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Api {
    async fn start(rule: Rule) -> Api {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (rule, seen) = (Arc::new(rule), log.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (rule, seen) = (rule.clone(), seen.clone());
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let token = req
                        .headers()
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    let now = Instant::now();
                    let verdict = rule(&token, now);
                    let mut res = Response::new(Full::new(Bytes::new()));
                    if let Some(retry_after) = &verdict {
                        *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
                        res.headers_mut()
                            .insert("retry-after", retry_after.parse().unwrap());
                    }
                    let status = res.status().as_u16();
                    seen.lock().unwrap().push((token, now, status));
                    async move { Ok::<_, Infallible>(res) }
                });
                tokio::spawn(async move {
                    let io = TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        Api { addr, log, task }
    }

    fn log(&self) -> Vec<(String, Instant, u16)> {
        self.log.lock().unwrap().clone()
    }
}

/// The platform's way: `limit` requests per fixed window of `window` per token, the windows
/// starting `phase` before the API started (so not where pacer's first request falls).
fn fixed_windows(limit: u32, window: Duration, phase: Duration) -> Rule {
    let origin = Instant::now() - phase;
    let counts = Mutex::new(HashMap::<(String, u128), u32>::new());
    Box::new(move |token, now| {
        let since = now - origin;
        let index = since.as_nanos() / window.as_nanos();
        let mut counts = counts.lock().unwrap();
        let count = counts.entry((token.to_owned(), index)).or_default();
        if *count < limit {
            *count += 1;
            return None;
        }
        let end = window.as_nanos() * (index + 1);
        let left = Duration::from_nanos((end - since.as_nanos()) as u64);
        Some(left.as_secs().max(1).to_string())
    })
}

/// Offers `per_second` requests per second for each token for `length`, each in its own task;
/// returns the statuses clients got.
async fn offer(pacer: &Running, tokens: &[String], per_second: u32, length: Duration) -> Vec<u16> {
    let client = client();
    let gap = Duration::from_secs(1) / per_second;
    let start = Instant::now();
    let mut tasks = Vec::new();
    let mut tick = tokio::time::interval(gap);
    while start.elapsed() < length {
        tick.tick().await;
        for token in tokens {
            let req = request("GET", &pacer.url("/api/v2/x"))
                .header("authorization", format!("Bearer {token}"))
                .body(Full::default())
                .unwrap();
            let client = client.clone();
            tasks.push(tokio::spawn(
                async move { send(&client, req).await.0.as_u16() },
            ));
        }
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses
}

const QUOTA: &str = "
upstreams:
  api: { base_url: 'http://{mock}' }
limits:
  per-token: { quota: 30/6s, key: token, queue: { max_wait: 5s } }
routes:
  - { match: 'GET /api/v2/**', limits: [per-token] }
";

/// Twice the limit for 30 s with `n` tokens: no 429 from the API, and each token gets at least
/// 98% of 30 per 6 s through.
async fn quota_holds_fixed_windows(n: usize) {
    let api = Api::start(fixed_windows(
        30,
        Duration::from_secs(6),
        Duration::from_millis(2_300),
    ))
    .await;
    let pacer = start_pacer(QUOTA, api.addr).await;
    let tokens: Vec<String> = (0..n).map(|i| format!("agent-{i}")).collect();
    let start = Instant::now();
    let length = Duration::from_secs(30);
    offer(&pacer, &tokens, 10, length).await;
    let log = api.log();
    let throttled = log.iter().filter(|(_, _, s)| *s == 429).count();
    assert_eq!(throttled, 0, "upstream 429s");
    for token in &tokens {
        let bearer = format!("Bearer {token}");
        let ok = log
            .iter()
            .filter(|(t, at, s)| *t == bearer && *s == 200 && *at - start < length)
            .count();
        assert!(ok >= 147, "{token}: {ok} of 150 in 30 s");
    }
}

#[tokio::test(start_paused = true)]
async fn a_quota_meets_fixed_windows_exactly_with_one_token() {
    quota_holds_fixed_windows(1).await;
}

#[tokio::test(start_paused = true)]
async fn a_quota_meets_fixed_windows_exactly_with_twenty_tokens() {
    quota_holds_fixed_windows(20).await;
}

/// A bucket at the same numbers overruns the same windows (here a window that starts with
/// pacer, so the bucket's burst and its rate fall in one): what the quota is for.
#[tokio::test(start_paused = true)]
async fn a_bucket_at_the_same_numbers_draws_429s() {
    let api = Api::start(fixed_windows(30, Duration::from_secs(6), Duration::ZERO)).await;
    let yaml = QUOTA.replace("quota: 30/6s", "rate: 5/s, burst: 10");
    let pacer = start_pacer(&yaml, api.addr).await;
    offer(&pacer, &["a".to_owned()], 10, Duration::from_secs(30)).await;
    let throttled = api.log().iter().filter(|(_, _, s)| *s == 429).count();
    assert!(throttled > 0, "rate x period + burst = 40 > 30 per window");
}

/// One request too many draws `Retry-After: 1000`, though the API accepts again a second later.
/// The key pauses for `max_pause` (2 s), one probe goes, and the rest follow at the rate.
#[tokio::test(start_paused = true)]
async fn a_retry_after_of_1000_pauses_for_max_pause_then_one_probe() {
    let start = Instant::now();
    let api = Api::start(Box::new(move |_, now| {
        (now - start < Duration::from_millis(1000)).then(|| "1000".to_owned())
    }))
    .await;
    let yaml = "
upstreams:
  api: { base_url: 'http://{mock}' }
limits:
  route: { quota: 10/s, queue: { max_wait: 30s } }
  per-token: { quota: 10/s, key: token, queue: { max_wait: 30s } }
routes:
  - { match: 'GET /api/v2/**', limits: [route, per-token] }
retry: { max_retry_after: 10s, max_pause: 2s }
";
    let pacer = start_pacer(yaml, api.addr).await;
    let statuses = offer(&pacer, &["t".to_owned()], 10, Duration::from_secs(60)).await;
    let ok = statuses.iter().filter(|&&s| s == 200).count();
    eprintln!("{ok} of {} succeeded", statuses.len());
    assert!(
        ok * 100 >= statuses.len() * 90,
        "{ok} of {} succeeded",
        statuses.len()
    );
    let log = api.log();
    assert_eq!(log[0].2, 429);
    assert!(log[1..].iter().all(|(_, _, s)| *s == 200), "one 429 only");
    assert_eq!(log[1].1 - log[0].1, Duration::from_secs(2), "the probe");
    for pair in log[1..].windows(2) {
        assert!(
            pair[1].1 - pair[0].1 >= Duration::from_millis(99),
            "resumed at the rate, not in a burst"
        );
    }
}

/// An API that counts Retry-After in milliseconds: `1000` is one second, which pacer waits out
/// and retries, rather than giving up on a 1000 s wait.
#[tokio::test(start_paused = true)]
async fn retry_after_in_milliseconds() {
    let first = std::sync::atomic::AtomicBool::new(true);
    let api = Api::start(Box::new(move |_, _| {
        first
            .swap(false, std::sync::atomic::Ordering::Relaxed)
            .then(|| "1000".to_owned())
    }))
    .await;
    let yaml = "
upstreams:
  api: { base_url: 'http://{mock}', retry_after_unit: milliseconds }
limits:
  route: { quota: 10/s }
routes:
  - { match: 'GET /api/v2/**', limits: [route] }
retry: { max_retry_after: 5s }
";
    let pacer = start_pacer(yaml, api.addr).await;
    let start = Instant::now();
    let (status, headers, _) = get(&client(), &pacer.url("/api/v2/x")).await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-pacer-retries"], "1");
    let log = api.log();
    assert_eq!(log[1].1 - log[0].1, Duration::from_secs(1));
    assert!(start.elapsed() < Duration::from_millis(1100));
}
