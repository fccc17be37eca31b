//! Quota benchmark (run through `bench/quota.sh`): the mock enforcing fixed windows of 30
//! requests per 6 s per token, each token offered twice that, through three contenders in turn,
//! each against a fresh mock:
//!
//! - pacer with `quota: 30/6s` (the API's exact number),
//! - pacer with `rate: 27/6s`-equivalent (`rate: 270/min`, burst 1: a bucket at 90%),
//! - nginx `limit_req` in delay mode at the API's exact rate (`rate=5r/s burst=300`: every
//!   excess request delayed, 300 = 5/s x pacer's 60 s `max_wait`), when nginx is on PATH.
//!
//! Reports per contender: client 200s and 429s, API 429s, and the utilisation of the binding
//! limit: the 200s that came back while the load was offered, against what the API's windows
//! allowed in that time (the queues never empty meanwhile, so the limit binds throughout).

use std::process::{Child, Command};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::time::Instant;

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>;

const WINDOW: Duration = Duration::from_secs(6);
const PER_WINDOW: u32 = 30;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let run_for = Duration::from_secs(env_u64("BENCH_SECONDS", 60));
    let tokens = env_u64("BENCH_TOKENS", 5) as usize;
    println!(
        "API: {PER_WINDOW} per {WINDOW:?} per token (fixed windows, 20 ms latency); {tokens} tokens \
         offered {} /s each for {run_for:?}",
        2.0 * f64::from(PER_WINDOW) / WINDOW.as_secs_f64()
    );
    println!("contender            client 200  client 429  errors  API 429  utilisation  run");
    // BENCH_ONLY=nginx (any part of a contender's name) runs only the matching contenders.
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    for contender in [
        "pacer quota: 30/6s",
        "pacer rate: 270/min",
        "nginx limit_req 5r/s",
    ]
    .into_iter()
    .filter(|c| c.contains(only.as_str()))
    {
        let mock = start_mock().await?;
        let (url, _guard) = match start(contender, mock).await? {
            Some(started) => started,
            None => {
                println!("{contender:<20} SKIPPED (nginx is not on PATH)");
                continue;
            }
        };
        let (answers, took) = offer(&url, tokens, run_for).await;
        let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
        let in_time = answers
            .iter()
            .filter(|a| a.0 == 200 && a.1 <= run_for)
            .count();
        let stats = mock_stats(mock).await?;
        let ok = statuses.iter().filter(|&&s| s == 200).count();
        let refused = statuses.iter().filter(|&&s| s == 429).count();
        // No answer at all (connection refused, reset or closed): a 0 in `offer`.
        let errors = statuses.iter().filter(|&&s| s == 0).count();
        let allowed =
            tokens as f64 * f64::from(PER_WINDOW) * run_for.as_secs_f64() / WINDOW.as_secs_f64();
        println!(
            "{contender:<20} {ok:>10}  {refused:>10}  {errors:>6}  {:>7}  {:>10.1}%  {:.0}s",
            stats["throttled_total"],
            100.0 * in_time as f64 / allowed,
            took.as_secs_f64()
        );
    }
    Ok(())
}

async fn start_mock() -> anyhow::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let config = pacer::mock::MockConfig {
        default_limit: Some(pacer::mock::WindowLimit {
            requests: PER_WINDOW,
            window: WINDOW,
        }),
        latency: Duration::from_millis(20),
        ..Default::default()
    };
    tokio::spawn(pacer::mock::serve(listener, config, std::future::pending()));
    Ok(addr)
}

/// Stops nginx when the contender is done: SIGTERM to the master, which stops its workers
/// (SIGKILL would leave them running).
struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.0.id()) {
            // SAFETY: kill takes plain integers; the pid is our own child's, not yet reaped.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let _ = self.0.wait();
    }
}

/// Starts a contender in front of `mock`: its base URL, and what keeps it running.
async fn start(
    contender: &str,
    mock: std::net::SocketAddr,
) -> anyhow::Result<Option<(String, Option<Nginx>)>> {
    let limit = match contender {
        "pacer quota: 30/6s" => "quota: 30/6s",
        "pacer rate: 270/min" => "rate: 270/min",
        _ => return start_nginx(mock).await,
    };
    let yaml = format!(
        "upstreams:\n  mock: {{ base_url: 'http://{mock}' }}\n\
         limits:\n  per-token: {{ {limit}, key: token, queue: {{ max_wait: 60s }} }}\n\
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
    Ok(Some((format!("http://{addr}"), None)))
}

async fn start_nginx(
    mock: std::net::SocketAddr,
) -> anyhow::Result<Option<(String, Option<Nginx>)>> {
    let Some(nginx) = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        return Ok(None);
    };
    let port = TcpListener::bind("127.0.0.1:0").await?.local_addr()?.port();
    let dir = std::env::temp_dir().join(format!("pacer-quota-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let d = dir.display();
    // Every delayed request holds a client and an upstream connection: 20 tokens with a burst
    // of 300 each is 12,000 connections, so the default-sized 4096 would refuse some.
    let conf = format!(
        "daemon off; worker_processes 1; worker_rlimit_nofile 65536; pid {d}/nginx.pid;\n\
         error_log {d}/error.log;\n\
         events {{ worker_connections 32768; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;\n\
           fastcgi_temp_path {d}/fcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
           limit_req_zone $http_authorization zone=per_token:10m rate=5r/s;\n\
           limit_req_status 429;\n\
           upstream api {{ server {mock}; keepalive 64; }}\n\
           server {{\n    listen 127.0.0.1:{port};\n    location / {{\n\
               limit_req zone=per_token burst=300;\n\
               proxy_pass http://api; proxy_http_version 1.1; proxy_set_header Connection \"\";\n\
             }}\n  }}\n}}\n"
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf)?;
    let child = Command::new(nginx)
        .args(["-p", &dir.display().to_string(), "-c"])
        .arg(&path)
        .spawn()?;
    let guard = Nginx(child);
    // Ready once it accepts connections.
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(Some((format!("http://127.0.0.1:{port}"), Some(guard))));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("nginx did not start; see {d}/error.log")
}

/// Open model: each token sends twice its share, one request every WINDOW / (2 x PER_WINDOW).
/// Returns each answer's status and when it came (from the start), and how long until the last.
async fn offer(base: &str, tokens: usize, run_for: Duration) -> (Vec<(u16, Duration)>, Duration) {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let gap = WINDOW / (2 * PER_WINDOW);
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
