//! Mixed soak (run through `bench/soak.sh`): `pacer proxy` as a child process in front of an
//! in-process fault upstream, with four lanes of closed-loop clients, GETs and POSTs alternating:
//!
//! - queued: a 100/s limit the lane's 40 clients push against, so most requests queue;
//! - throttled: the upstream answers every third request 429 (`Retry-After: 1`), which pacer's
//!   retry absorbs;
//! - faulting: the upstream closes every fifth connection after reading the request, unanswered;
//! - slow: the upstream takes 2 s, behind a concurrency cap of 4 with a 5 s `max_wait`.
//!
//! Reports pacer's RSS at start, middle and end, the statuses per lane (anything outside a
//! lane's expected set, transport errors included, is unexpected), and POSTs the upstream
//! processed more than once (a POST answered 429 was not processed; one cut after being read
//! was).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// Lane name, path prefix, clients, statuses a client may see.
const LANES: [(&str, usize, &[u16]); 4] = [
    ("queued", 40, &[200]),
    ("throttled", 20, &[200, 429]),
    ("fault", 20, &[200, 502]),
    ("slow", 10, &[200, 429]),
];

#[derive(Default)]
struct Upstream {
    seen: AtomicU64,
    /// POST id -> times processed (received and not answered 429).
    processed: Mutex<HashMap<u64, u32>>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let run_for = Duration::from_secs(env("BENCH_SECONDS", 180));
    let bin = std::env::var("PACER_BIN").unwrap_or_else(|_| "target/release/pacer".into());
    let upstream = Arc::new(Upstream::default());
    let up_listener = TcpListener::bind("127.0.0.1:0").await?;
    let up_addr = up_listener.local_addr()?;
    tokio::spawn(serve_upstream(up_listener, upstream.clone()));

    let port = TcpListener::bind("127.0.0.1:0").await?.local_addr()?.port();
    let dir = std::env::temp_dir().join(format!("pacer-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("pacer.yaml");
    std::fs::write(&config, pacer_yaml(port, up_addr))?;
    let mut child = tokio::process::Command::new(&bin)
        .args(["proxy", "--config"])
        .arg(&config)
        .env("RUST_LOG", "error")
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().expect("pacer runs");
    let proxy = format!("http://127.0.0.1:{port}");
    wait_listening(port).await;

    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build_http();
    let statuses = Arc::new(Mutex::new(HashMap::<(&str, u16), u64>::new()));
    let ids = Arc::new(AtomicU64::new(1));
    let deadline = Instant::now() + run_for;
    let mut tasks = Vec::new();
    for (lane, clients, _) in LANES {
        for _ in 0..clients {
            let (client, statuses, ids) = (client.clone(), statuses.clone(), ids.clone());
            let base = format!("{proxy}/{lane}/items");
            tasks.push(tokio::spawn(async move {
                let mut post = false;
                while Instant::now() < deadline {
                    let id = ids.fetch_add(1, Ordering::Relaxed);
                    let status = send(&client, &base, post, id).await;
                    *statuses.lock().unwrap().entry((lane, status)).or_default() += 1;
                    post = !post;
                }
            }));
        }
    }
    let mut rss = vec![("start", rss_kib(pid))];
    tokio::time::sleep(run_for / 2).await;
    rss.push(("middle", rss_kib(pid)));
    for t in tasks {
        t.await?;
    }
    rss.push(("end", rss_kib(pid)));
    let _ = child.kill().await;
    report(run_for, &rss, &statuses.lock().unwrap(), &upstream);
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pacer_yaml(port: u16, upstream: std::net::SocketAddr) -> String {
    format!(
        "listen: 127.0.0.1:{port}
upstreams:
  up: {{ base_url: 'http://{upstream}', timeouts: {{ request: 10s }} }}
limits:
  queued: {{ rate: 100/s, burst: 10, queue: {{ max_depth: 2000, max_wait: 30s }} }}
  throttled: {{ rate: 200/s, burst: 10, queue: {{ max_wait: 30s }} }}
  slow: {{ concurrency: 4, queue: {{ max_depth: 100, max_wait: 5s }} }}
routes:
  - {{ match: '* /queued/**', limits: [queued] }}
  - {{ match: '* /throttled/**', limits: [throttled] }}
  - {{ match: '* /slow/**', limits: [slow] }}
retry: {{ max_attempts: 3, max_retry_after: 5s }}
"
    )
}

async fn wait_listening(port: u16) {
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("pacer did not start listening");
}

/// One request; the status, or 0 for a transport error.
async fn send(client: &HttpClient, base: &str, post: bool, id: u64) -> u16 {
    let req = http::Request::builder()
        .method(if post { "POST" } else { "GET" })
        .uri(format!("{base}/{id}"))
        .header("x-soak-id", id)
        .body(Full::new(if post {
            Bytes::from_static(b"{\"x\":1}")
        } else {
            Bytes::new()
        }))
        .expect("a valid request");
    let sent = tokio::time::timeout(Duration::from_secs(60), client.request(req)).await;
    match sent {
        Ok(Ok(res)) => {
            let status = res.status().as_u16();
            match res.into_body().collect().await {
                Ok(_) => status,
                Err(_) => 0,
            }
        }
        _ => 0,
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn report(
    run_for: Duration,
    rss: &[(&str, u64)],
    statuses: &HashMap<(&str, u16), u64>,
    upstream: &Upstream,
) {
    println!("soak: {} s, {} lanes", run_for.as_secs(), LANES.len());
    for (at, kib) in rss {
        println!("rss {at:>6}: {:.1} MiB", *kib as f64 / 1024.0);
    }
    let mut unexpected = 0;
    for (lane, _, expected) in LANES {
        let mut line: Vec<_> = statuses.iter().filter(|((l, _), _)| *l == lane).collect();
        line.sort();
        let shown: Vec<String> = line.iter().map(|((_, s), n)| format!("{s}: {n}")).collect();
        unexpected += line
            .iter()
            .filter(|((_, s), _)| !expected.contains(s))
            .map(|(_, n)| **n)
            .sum::<u64>();
        println!("lane {lane:>9}: {}", shown.join(", "));
    }
    let processed = upstream.processed.lock().unwrap();
    let duplicated = processed.values().filter(|&&n| n > 1).count();
    println!("unexpected statuses: {unexpected}");
    println!(
        "POSTs processed upstream: {}, duplicated: {duplicated}; requests the upstream saw: {}",
        processed.len(),
        upstream.seen.load(Ordering::Relaxed)
    );
}

// === the fault upstream ===

async fn serve_upstream(listener: TcpListener, state: Arc<Upstream>) {
    let counters: Arc<[AtomicU64; 2]> = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    while let Ok((stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(stream, state.clone(), counters.clone()));
    }
}

/// Serves keep-alive HTTP/1.1 requests with a Content-Length body (what pacer sends here).
async fn connection(mut s: TcpStream, state: Arc<Upstream>, counters: Arc<[AtomicU64; 2]>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let len = header(&head, "content-length").map_or(0, |v| v.parse().unwrap_or(0));
        while buf.len() < head_end + len {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..head_end + len);
        state.seen.fetch_add(1, Ordering::Relaxed);
        let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
        let id = header(&head, "x-soak-id").and_then(|v| v.parse::<u64>().ok());
        let post = head.starts_with("post ");
        let answer = decide(&path, &counters).await;
        if post && answer != Answer::Throttle {
            if let Some(id) = id {
                *state.processed.lock().unwrap().entry(id).or_default() += 1;
            }
        }
        let bytes: &[u8] = match answer {
            Answer::Cut => return,
            Answer::Throttle => b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 1\r\ncontent-length: 0\r\n\r\n",
            Answer::Ok => b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"ok\":true}",
        };
        if s.write_all(bytes).await.is_err() {
            return;
        }
    }
}

#[derive(PartialEq)]
enum Answer {
    Ok,
    Throttle,
    Cut,
}

async fn decide(path: &str, counters: &[AtomicU64; 2]) -> Answer {
    if path.starts_with("/throttled/") && counters[0].fetch_add(1, Ordering::Relaxed) % 3 == 2 {
        return Answer::Throttle;
    }
    if path.starts_with("/fault/") && counters[1].fetch_add(1, Ordering::Relaxed) % 5 == 4 {
        return Answer::Cut;
    }
    if path.starts_with("/slow/") {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Answer::Ok
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}
