//! `pacer demo`: the mock API, pacer in front of it, and the generator, all in this process on
//! free loopback ports. The same short load runs straight at the mock, then through pacer, and
//! the two are printed side by side: without pacer the load tool sees a wall of 429s; through
//! it, none, at the price of waiting in pacer's queue.
//!
//! The mock enforces a per-token fixed window like the platform's 300 requests per 60 s, on a
//! window of seconds so the effect shows in seconds. pacer's per-token limit is set 10% under
//! the mock's, the headroom a real config keeps so that timing jitter between pacer's smooth
//! spacing and the API's windows never turns into a 429.

use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::generate::{self, Report, Scenario};
use crate::mock::{MockConfig, WindowLimit};

/// How the demo is set up; the defaults finish in about 20 s.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// How long each run sends requests.
    pub duration: Duration,
    /// The load's arrival rate, per second.
    pub rate: u32,
    /// The mock's per-token limit.
    pub window: WindowLimit,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            duration: Duration::from_secs(6),
            rate: 20,
            window: WindowLimit {
                requests: 30,
                window: Duration::from_secs(3),
            },
        }
    }
}

/// What the two runs measured.
#[derive(Debug, Clone)]
pub struct Demo {
    pub options: DemoOptions,
    /// pacer's per-token rate, requests per second.
    pub pacer_rate: f64,
    pub direct: Side,
    pub through_pacer: Side,
}

/// One run: what the load tool saw, and what reached the mock.
#[derive(Debug, Clone)]
pub struct Side {
    pub report: Report,
    /// API requests the mock received (the token request not included).
    pub upstream_requests: u64,
    /// 429s the mock answered, replays included.
    pub upstream_429: u64,
}

/// A server task and the switch that stops it.
struct Server {
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

/// Runs the demo: mock and pacer up, the load twice, everything down again.
pub async fn run(options: &DemoOptions) -> anyhow::Result<Demo> {
    let (mock_addr, mock) = start_mock(options.window).await?;
    let pacer_rate = options.window.requests as f64 / options.window.window.as_secs_f64() * 0.9;
    let (pacer_addr, pacer) = start_pacer(mock_addr, pacer_rate).await?;
    let mock_url = format!("http://{mock_addr}");
    let result = async {
        let direct = side(&mock_url, options, None).await?;
        let proxy = format!("http://{pacer_addr}");
        let through_pacer = side(&mock_url, options, Some(proxy)).await?;
        anyhow::Ok((direct, through_pacer))
    }
    .await;
    for server in [pacer, mock] {
        let _ = server.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), server.task).await;
    }
    let (direct, through_pacer) = result?;
    Ok(Demo {
        options: options.clone(),
        pacer_rate,
        direct,
        through_pacer,
    })
}

/// One run of the load against a freshly reset mock.
async fn side(
    mock_url: &str,
    options: &DemoOptions,
    proxy: Option<String>,
) -> anyhow::Result<Side> {
    let helper = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    mock_helper(&helper, "POST", &format!("{mock_url}/__mock/reset")).await?;
    let scenario = scenario(mock_url, options)?;
    let generate_options = generate::Options {
        proxy,
        progress: true,
    };
    let report = generate::run(scenario, &generate_options).await?;
    let stats = mock_helper(&helper, "GET", &format!("{mock_url}/__mock/stats")).await?;
    let routes = stats["routes"].as_object().cloned().unwrap_or_default();
    let upstream_requests = routes
        .iter()
        .filter(|(route, _)| !route.ends_with("/oauth/token"))
        .map(|(_, counts)| counts["requests"].as_u64().unwrap_or(0))
        .sum();
    Ok(Side {
        report,
        upstream_requests,
        upstream_429: stats["throttled_total"].as_u64().unwrap_or(0),
    })
}

/// The load: the 500-agent script poll's request mix, at a steady rate, with one OAuth token.
fn scenario(mock_url: &str, options: &DemoOptions) -> anyhow::Result<Scenario> {
    let yaml = format!(
        "target: {mock_url}
auth: {{ token_url: {mock_url}/oauth/token, client_id: demo, client_secret: demo-secret }}
timeout: 60s
phases:
  - {{ name: steady, duration: {}ms, rate: {}/s }}
requests:
  - {{ name: poll-scripts, weight: 9, method: GET, path: /api/v2/scripts }}
  - {{ name: get-user, weight: 1, method: GET, path: /api/v2/users/me }}
",
        options.duration.as_millis(),
        options.rate
    );
    Scenario::parse_with_env(&yaml, |_| None).map_err(|e| anyhow::anyhow!("demo scenario: {e}"))
}

async fn start_mock(window: WindowLimit) -> anyhow::Result<(std::net::SocketAddr, Server)> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot bind a loopback port for the mock")?;
    let addr = listener.local_addr()?;
    let config = MockConfig {
        default_limit: Some(window),
        ..MockConfig::default()
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(crate::mock::serve(listener, config, async move {
        let _ = stopped.await;
    }));
    Ok((addr, Server { stop, task }))
}

async fn start_pacer(
    mock: std::net::SocketAddr,
    rate: f64,
) -> anyhow::Result<(std::net::SocketAddr, Server)> {
    // Per token, like the platform; queued, so the load tool waits instead of seeing 429s.
    let yaml = format!(
        "upstreams:
  mock: {{ base_url: 'http://{mock}', timeouts: {{ connect: 2s, request: 60s }} }}
limits:
  per-token:
    rate: {}/min
    burst: 1
    key: token
    queue: {{ max_depth: 10000, max_wait: 60s }}
routes:
  - {{ match: '* /api/v2/**', limits: [per-token] }}
",
        (rate * 60.0).floor()
    );
    let config = crate::Config::parse(&yaml, std::path::Path::new("."))
        .map_err(|e| anyhow::anyhow!("demo pacer config: {e}"))?;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot bind a loopback port for pacer")?;
    let addr = listener.local_addr()?;
    let listeners = crate::app::Listeners {
        proxy: listener,
        admin: None,
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let app = crate::app::App::new(config)?;
    let task = tokio::spawn(app.serve(listeners, async move {
        let _ = stopped.await;
    }));
    Ok((addr, Server { stop, task }))
}

/// Calls a `/__mock` helper and returns its JSON.
async fn mock_helper(
    client: &Client<HttpConnector, Empty<Bytes>>,
    method: &str,
    url: &str,
) -> anyhow::Result<serde_json::Value> {
    let req = http::Request::builder()
        .method(method)
        .uri(url)
        .body(Empty::new())?;
    let res = client.request(req).await.context("mock helper request")?;
    let body = res.into_body().collect().await?.to_bytes();
    Ok(serde_json::from_slice(&body)?)
}

// === impl Demo ===

impl Demo {
    /// The side-by-side table the demo prints.
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut out = self.setup();
        let _ = writeln!(out, "{:<30} {:>14} {:>14}", "", "direct", "through pacer");
        for (label, direct, paced) in self.rows() {
            let _ = writeln!(out, "{label:<30} {direct:>14} {paced:>14}");
        }
        let (direct, paced) = (&self.direct.report.total, &self.through_pacer.report.total);
        let _ = writeln!(
            out,
            "\nThrough pacer the load tool saw {} 429s instead of {}: requests over the limit\n\
             waited in pacer's queue (hence the latency) and reached the API when it would accept them.",
            paced.status_count(429),
            direct.status_count(429)
        );
        out
    }

    /// What ran: the mock's limit, pacer's, and the load.
    fn setup(&self) -> String {
        let o = &self.options;
        format!(
            "mock API: {} requests per {:?} per token, then 429 + Retry-After \
             (the platform does this with 300 per 60s)\n\
             pacer:    per-token limit {:.0}/s (10% headroom), queueing\n\
             load:     {}/s for {:?}, open model, one OAuth token\n\n",
            o.window.requests, o.window.window, self.pacer_rate, o.rate, o.duration
        )
    }

    /// Label, direct, through pacer.
    fn rows(&self) -> Vec<(&'static str, String, String)> {
        let (d, p) = (&self.direct, &self.through_pacer);
        let (dr, pr) = (&d.report.total, &p.report.total);
        let ms = |v: f64| format!("{v:.1}");
        vec![
            (
                "requests sent",
                dr.requests.to_string(),
                pr.requests.to_string(),
            ),
            (
                "200 OK",
                dr.status_count(200).to_string(),
                pr.status_count(200).to_string(),
            ),
            (
                "429 seen by the client",
                dr.status_count(429).to_string(),
                pr.status_count(429).to_string(),
            ),
            ("errors", dr.errors.to_string(), pr.errors.to_string()),
            (
                "requests reaching the API",
                d.upstream_requests.to_string(),
                p.upstream_requests.to_string(),
            ),
            (
                "429s from the API",
                d.upstream_429.to_string(),
                p.upstream_429.to_string(),
            ),
            (
                "p50 latency ms",
                ms(dr.latency_ms.p50),
                ms(pr.latency_ms.p50),
            ),
            (
                "p99 latency ms",
                ms(dr.latency_ms.p99),
                ms(pr.latency_ms.p99),
            ),
        ]
    }
}
