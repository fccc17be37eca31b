//! Learning benchmark (run through `bench/learn.sh`): the mock enforcing fixed windows of N
//! requests per W per token and saying so in Genesys's `inin-ratelimit-*` headers on every
//! answer, each token offered twice its share, through four contenders in turn, each against a
//! fresh mock:
//!
//! - pacer with `learn: true` and no rate (it reads the limit from the headers),
//! - pacer with `quota: N/W` (the API's exact number, written by hand),
//! - pacer with `rate: N/W` (the same number as a rate, burst 1; written per minute),
//! - pacer with AIMD only: `rate: 2N/W, adaptive: true` (the offered rate, cut by 429s).
//!
//! Reports per contender: client 200s and 429s, API 429s, and the utilisation of the API's
//! limit: the 200s that came back while the load was offered, against what the API's windows
//! allowed in that time (the queues never empty meanwhile, so the limit binds throughout).
//! `BENCH_PER_WINDOW` and `BENCH_WINDOW_SECONDS` set N and W (the platform's 300 per 60 s by
//! default), `BENCH_TOKENS` the tokens (20), `BENCH_SECONDS` how long the load is offered (180)
//! and `BENCH_MAX_WAIT` the limits' `queue.max_wait` in seconds (30). A learning limit cannot
//! tell in advance that a queued request will miss its deadline (the API's next answer may
//! change the budget), so it holds each to its deadline where a quota or rate refuses it at
//! once: at twice the limit and 60 s, 20 tokens hold about 12,000 client connections and as many
//! of pacer's, past this process's file limit on the development machine (20,000), and requests
//! failed for it.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::time::Instant;

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>;

/// The API's contract: `per_window` requests per `window` per token.
#[derive(Clone, Copy)]
struct Contract {
    per_window: u32,
    window: Duration,
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let api = Contract {
        per_window: u32::try_from(env_u64("BENCH_PER_WINDOW", 300))?,
        window: Duration::from_secs(env_u64("BENCH_WINDOW_SECONDS", 60)),
    };
    let run_for = Duration::from_secs(env_u64("BENCH_SECONDS", 180));
    let tokens = env_u64("BENCH_TOKENS", 20) as usize;
    let (n, w) = (api.per_window, api.window.as_secs());
    println!(
        "API: {n} per {w}s per token (fixed windows, 20 ms latency, inin-ratelimit-* headers); \
         {tokens} tokens offered {:.2}/s each for {run_for:?}",
        2.0 * f64::from(n) / api.window.as_secs_f64()
    );
    println!("contender                      client 200  client 429  API 429  utilisation  run");
    let contenders = [
        ("pacer learn: true".to_owned(), "learn: true".to_owned()),
        (format!("pacer quota: {n}/{w}s"), format!("quota: {n}/{w}s")),
        (
            format!("pacer rate: {}", rate(n, w)),
            format!("rate: {}", rate(n, w)),
        ),
        (
            format!("pacer rate: {} adaptive", rate(2 * n, w)),
            format!("rate: {}, adaptive: true", rate(2 * n, w)),
        ),
    ];
    // `BENCH_ONLY=learn` runs only the contenders whose name contains it.
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    for (name, limit) in contenders.into_iter().filter(|c| c.0.contains(&only)) {
        let mock = start_mock(api).await?;
        let url = start_pacer(&limit, mock).await?;
        let (answers, took) = offer(&url, api, tokens, run_for).await;
        let in_time = answers
            .iter()
            .filter(|a| a.0 == 200 && a.1 <= run_for)
            .count();
        let stats = mock_stats(mock).await?;
        let ok = answers.iter().filter(|a| a.0 == 200).count();
        let refused = answers.iter().filter(|a| a.0 == 429).count();
        let mut other: Vec<u16> = answers
            .iter()
            .map(|a| a.0)
            .filter(|&s| s != 200 && s != 429)
            .collect();
        other.sort_unstable();
        other.dedup();
        let allowed = tokens as f64 * f64::from(n) * run_for.as_secs_f64() / w as f64;
        println!(
            "{name:<30} {ok:>10}  {refused:>10}  {:>7}  {:>10.1}%  {:.0}s{}",
            stats["throttled_total"],
            100.0 * in_time as f64 / allowed,
            took.as_secs_f64(),
            match other.is_empty() {
                true => String::new(),
                false => format!(
                    "  ({} other answers: {other:?}; 0 is a failed request)",
                    answers.len() - ok - refused
                ),
            }
        );
    }
    Ok(())
}

/// `n` per `w` seconds as a rate (a rate's period is s, min or h): per minute when that is
/// whole, else per hour (rounded down, so never above the API's number).
fn rate(n: u32, w: u64) -> String {
    let n = u64::from(n);
    if n * 60 % w == 0 {
        format!("{}/min", n * 60 / w)
    } else {
        format!("{}/h", n * 3600 / w)
    }
}

async fn start_mock(api: Contract) -> anyhow::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let config = pacer::mock::MockConfig {
        default_limit: Some(pacer::mock::WindowLimit {
            requests: api.per_window,
            window: api.window,
        }),
        latency: Duration::from_millis(20),
        ratelimit_headers: pacer::mock::HeaderFamily::Genesys,
        ..Default::default()
    };
    tokio::spawn(pacer::mock::serve(listener, config, std::future::pending()));
    Ok(addr)
}

/// Starts pacer with one per-token limit set by `limit` in front of `mock`: its base URL.
async fn start_pacer(limit: &str, mock: std::net::SocketAddr) -> anyhow::Result<String> {
    let max_wait = env_u64("BENCH_MAX_WAIT", 30);
    let yaml = format!(
        "upstreams:\n  mock: {{ base_url: 'http://{mock}' }}\n\
         limits:\n  per-token: {{ {limit}, key: token, queue: {{ max_wait: {max_wait}s }} }}\n\
         routes:\n  - {{ match: '* /api/v2/**', limits: [per-token] }}\n"
    );
    let config = pacer::Config::parse(&yaml, std::path::Path::new("."))?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let listeners = pacer::app::Listeners {
        proxy: listener,
        admin: None,
    };
    tokio::spawn(pacer::app::run(listeners, config, std::future::pending()));
    Ok(format!("http://{addr}"))
}

/// Open model: each token sends twice its share, one request every W / (2 x N). Returns each
/// answer's status and when it came (from the start), and how long until the last.
async fn offer(
    base: &str,
    api: Contract,
    tokens: usize,
    run_for: Duration,
) -> (Vec<(u16, Duration)>, Duration) {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let gap = api.window / (2 * api.per_window);
    let start = Instant::now();
    let mut tasks = Vec::new();
    let mut i = 0u32;
    while start.elapsed() < run_for {
        tokio::time::sleep_until(start + gap * i).await;
        for t in 0..tokens {
            let req = http::Request::get(format!("{base}/api/v2/users"))
                .header("authorization", format!("Bearer bench-{t}"))
                .body(Empty::new())
                .unwrap();
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                let status = match client.request(req).await {
                    Ok(res) => {
                        let status = res.status().as_u16();
                        let _ = res.into_body().collect().await;
                        status
                    }
                    Err(_) => 0,
                };
                (status, start.elapsed())
            }));
        }
        i += 1;
    }
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.unwrap_or((0, Duration::MAX)));
    }
    (out, start.elapsed())
}

async fn mock_stats(mock: std::net::SocketAddr) -> anyhow::Result<serde_json::Value> {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let res = client
        .request(http::Request::get(format!("http://{mock}/__mock/stats")).body(Empty::new())?)
        .await?;
    Ok(serde_json::from_slice(
        &res.into_body().collect().await?.to_bytes(),
    )?)
}
