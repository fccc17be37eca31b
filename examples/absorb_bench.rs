//! Absorption benchmark (run through `bench/absorb.sh`): the mock enforcing the platform's 300
//! requests per 60 s per token, pacer in front with a per-token limit set too high and
//! `adaptive: true`, and one client asking for twice the platform's rate.
//!
//! Reports client-visible 429s (target 0), upstream 429s as a share of upstream requests (target
//! ≤ 2% once adapted), and the added p99 latency of requests that did not wait, against the same
//! requests sent straight to the mock.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>;

fn env_secs(name: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let run_for = env_secs("BENCH_SECONDS", 150);
    let rate: f64 = std::env::var("BENCH_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10.0);
    let mock_listener = TcpListener::bind("127.0.0.1:0").await?;
    let mock_addr = mock_listener.local_addr()?;
    tokio::spawn(pacer::mock::serve(
        mock_listener,
        pacer::mock::MockConfig::default(),
        std::future::pending(),
    ));
    let yaml = format!(
        "upstreams:\n  mock: {{ base_url: 'http://{mock_addr}' }}\n\
         limits:\n  per-token: {{ rate: 360/min, burst: 1, key: token, adaptive: true, queue: {{ max_wait: 600s }} }}\n\
         routes:\n  - {{ match: '* /api/v2/**', limits: [per-token] }}\n\
         retry: {{ max_attempts: 5, max_retry_after: 65s }}\n"
    );
    let config = pacer::Config::parse(&yaml, std::path::Path::new("."))?;
    let pacer_listener = TcpListener::bind("127.0.0.1:0").await?;
    let pacer_addr = pacer_listener.local_addr()?;
    let listeners = pacer::app::Listeners {
        proxy: pacer_listener,
        admin: None,
    };
    tokio::spawn(pacer::app::run(listeners, config, std::future::pending()));

    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    // Baseline: the same request straight to the mock, with its own token so the limits do
    // not interfere, for the latency of a request that does not wait.
    let direct = sample(
        &client,
        &format!("http://{mock_addr}/api/v2/users"),
        "baseline",
        200,
    )
    .await;
    println!(
        "offering {rate}/s for {}s through pacer (platform allows 5/s)",
        run_for.as_secs()
    );
    // Alongside the overload, a probe token at 1/s that never waits in pacer: the latency pacer
    // adds to a request that passes straight through.
    let through = format!("http://{pacer_addr}/api/v2/users");
    let probe = tokio::spawn({
        let (client, url) = (client.clone(), through.clone());
        async move { offer_as(&client, &url, 1.0, run_for, "probe-token").await }
    });
    let results = offer(&client, &through, rate, run_for).await;
    let probes = probe.await?;
    report(&client, mock_addr, &direct, &results, &probes).await
}

struct Outcome {
    status: u16,
    took: Duration,
    waited: bool,
}

/// Sends `n` sequential requests and returns their latencies.
async fn sample(client: &HttpClient, url: &str, token: &str, n: usize) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(one(client, url, token).await.took);
    }
    out
}

async fn one(client: &HttpClient, url: &str, token: &str) -> Outcome {
    let req = http::Request::get(url)
        .header("authorization", format!("Bearer {token}"))
        .body(Empty::new())
        .unwrap();
    let started = Instant::now();
    match client.request(req).await {
        Ok(res) => {
            let status = res.status().as_u16();
            let waited = res.headers().contains_key("x-pacer-queued-ms")
                || res.headers().contains_key("x-pacer-retries");
            let _ = res.into_body().collect().await;
            Outcome {
                status,
                took: started.elapsed(),
                waited,
            }
        }
        Err(_) => Outcome {
            status: 0,
            took: started.elapsed(),
            waited: false,
        },
    }
}

/// Open model: one request every 1/rate seconds, whatever the responses do.
async fn offer(client: &HttpClient, url: &str, rate: f64, run_for: Duration) -> Vec<Outcome> {
    offer_as(client, url, rate, run_for, "load-token").await
}

async fn offer_as(
    client: &HttpClient,
    url: &str,
    rate: f64,
    run_for: Duration,
    token: &'static str,
) -> Vec<Outcome> {
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    let mut i = 0u32;
    while start.elapsed() < run_for {
        tokio::time::sleep_until(start + interval * i).await;
        let (client, url) = (client.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move { one(&client, &url, token).await }));
        i += 1;
    }
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn p99(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get((v.len().saturating_sub(1)) * 99 / 100)
        .copied()
        .unwrap_or_default()
}

async fn report(
    client: &HttpClient,
    mock: std::net::SocketAddr,
    direct: &[Duration],
    results: &[Outcome],
    probes: &[Outcome],
) -> anyhow::Result<()> {
    let client_429 = results.iter().filter(|o| o.status == 429).count();
    let ok = results.iter().filter(|o| o.status == 200).count();
    let other = results.len() - ok - client_429;
    let res = client
        .request(http::Request::get(format!("http://{mock}/__mock/stats")).body(Empty::new())?)
        .await?;
    let stats: serde_json::Value =
        serde_json::from_slice(&res.into_body().collect().await?.to_bytes())?;
    let upstream = stats["requests_total"].as_u64().unwrap_or(0) as f64;
    let throttled = stats["throttled_total"].as_u64().unwrap_or(0) as f64;
    let unwaited: Vec<Duration> = probes
        .iter()
        .filter(|o| !o.waited && o.status == 200)
        .map(|o| o.took)
        .collect();
    println!(
        "client requests {}: 200 {ok}, 429 {client_429} (target 0), other {other}",
        results.len()
    );
    println!(
        "upstream requests {upstream} (baseline sample included), 429s {throttled}: {:.2}% (target <= 2%)",
        100.0 * throttled / upstream.max(1.0)
    );
    let (base, through) = (p99(direct.to_vec()), p99(unwaited.clone()));
    println!(
        "p99 of requests that did not wait: direct {:.3} ms, through pacer {:.3} ms ({} samples): added {:.3} ms",
        base.as_secs_f64() * 1e3,
        through.as_secs_f64() * 1e3,
        unwaited.len(),
        (through.as_secs_f64() - base.as_secs_f64()) * 1e3
    );
    Ok(())
}
