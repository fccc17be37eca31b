//! What the window benchmarks (`quota_bench.rs`, `learn_bench.rs`) share: the mock enforcing
//! fixed windows per token, pacer with one per-token limit in front of it, the open-model load
//! and the mock's counters. Not an example of its own (cargo takes only `examples/*.rs` and
//! `examples/*/main.rs` as examples).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::time::Instant;

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>;

/// The API's contract: `per_window` requests per `window` per token, in fixed windows.
#[derive(Clone, Copy)]
pub struct Contract {
    pub per_window: u32,
    pub window: Duration,
}

pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The mock enforcing `api` per token with 20 ms of latency, sending `headers`.
pub async fn start_mock(
    api: Contract,
    headers: pacer::mock::HeaderFamily,
) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let config = pacer::mock::MockConfig {
        default_limit: Some(pacer::mock::WindowLimit {
            requests: api.per_window,
            window: api.window,
        }),
        latency: Duration::from_millis(20),
        ratelimit_headers: headers,
        ..Default::default()
    };
    tokio::spawn(pacer::mock::serve(listener, config, std::future::pending()));
    Ok(addr)
}

/// Starts pacer in front of `mock` with one per-token limit (`limit`, e.g. `quota: 30/6s`)
/// queueing up to `max_wait`: its base URL.
pub async fn start_pacer(
    limit: &str,
    max_wait: Duration,
    mock: SocketAddr,
) -> anyhow::Result<String> {
    let max_wait = max_wait.as_secs();
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
/// answer's status (0 for no answer) and when it came (from the start), and how long until the
/// last.
pub async fn offer(
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

/// The mock's `/__mock/stats` counters.
pub async fn mock_stats(mock: SocketAddr) -> anyhow::Result<serde_json::Value> {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let res = client
        .request(http::Request::get(format!("http://{mock}/__mock/stats")).body(Empty::new())?)
        .await?;
    Ok(serde_json::from_slice(
        &res.into_body().collect().await?.to_bytes(),
    )?)
}
