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

mod common;

use std::process::{Child, Command};
use std::time::Duration;

use common::{env_u64, mock_stats, offer, start_mock, start_pacer, Contract};

use tokio::net::TcpListener;

const WINDOW: Duration = Duration::from_secs(6);
const PER_WINDOW: u32 = 30;
const API: Contract = Contract {
    per_window: PER_WINDOW,
    window: WINDOW,
};

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
        let mock = start_mock(API, Default::default()).await?;
        let (url, _guard) = match start(contender, mock).await? {
            Some(started) => started,
            None => {
                println!("{contender:<20} SKIPPED (nginx is not on PATH)");
                continue;
            }
        };
        let (answers, took) = offer(&url, API, tokens, run_for).await;
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
    let url = start_pacer(limit, Duration::from_secs(60), mock).await?;
    Ok(Some((url, None)))
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
