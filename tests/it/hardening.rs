//! Holding under hostile input: pathological routes, paths that dodge routes, and shutdown.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::*;

/// An upstream that records each request line it gets and answers an empty 200.
struct Recorder {
    addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    async fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let seen = lines.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while let Ok(n) = s.read(&mut chunk).await {
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        while let Some(end) = find(&buf, b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                            seen.lock()
                                .unwrap()
                                .push(head.lines().next().unwrap().to_owned());
                            buf.drain(..end + 4);
                            let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                            if s.write_all(ok).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        Recorder {
            addr,
            lines,
            _task: task,
        }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

const SCRIPTS_LIMITED: &str = "
upstreams:
  api: { base_url: 'http://{mock}', hosts: [api.test] }
default_upstream: api
limits:
  scripts: { rate: 1/min, burst: 1, mode: reject }
routes:
  - { match: 'GET /api/v2/scripts/**', limits: [scripts] }
";

#[tokio::test]
async fn encoded_and_dotted_paths_pass_the_limit_of_the_path_they_name() {
    let upstream = Recorder::start().await;
    let pacer = start_pacer(SCRIPTS_LIMITED, upstream.addr).await;
    let c = client();
    let (status, _, _) = get(&c, &pacer.url("/api/v2/scripts/1")).await;
    assert_eq!(status, 200);
    // The limit's one token is spent: every spelling of the same path is refused by it.
    for path in [
        "/api/v2/%73cripts/1",
        "/api/v2/x/../scripts/1",
        "/api/v2/./scripts/1",
        "/api/v2/%2e/scripts/1",
    ] {
        let (status, _, body) = get(&c, &pacer.url(path)).await;
        assert_eq!(status, 429, "{path} was not shaped");
        assert_eq!(json(&body)["code"], "pacer.rate.limited");
    }
    assert_eq!(upstream.lines(), ["GET /api/v2/scripts/1 HTTP/1.1"]);
}

#[tokio::test]
async fn the_normalised_target_is_forwarded() {
    let upstream = Recorder::start().await;
    let pacer = start_pacer(SCRIPTS_LIMITED, upstream.addr).await;
    let c = client();
    let (status, _, _) = get(&c, &pacer.url("/api/v2/%75sers/./me/../me?x=%2e/..")).await;
    assert_eq!(status, 200);
    // An absolute URI with no path (here only a fragment) asks for "/".
    let reply = raw_exchange(
        pacer.addr,
        b"GET http://api.test#frag HTTP/1.1\r\nhost: api.test\r\n\r\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert_eq!(
        upstream.lines(),
        ["GET /api/v2/users/me?x=%2e/.. HTTP/1.1", "GET / HTTP/1.1"]
    );
}

#[tokio::test]
async fn a_64_kb_path_against_three_double_stars_is_answered_at_once() {
    let upstream = Recorder::start().await;
    let yaml = "
upstreams:
  api: { base_url: 'http://{mock}' }
server: { max_header_bytes: 131072 }
limits:
  open: { rate: 100/s }
routes:
  - { match: 'GET /**/conversations/**/participants/**/x', limits: [open] }
";
    let pacer = start_pacer(yaml, upstream.addr).await;
    // 64 KB, just under the longest URI the http crate parses (65,534 bytes).
    let mut path = String::new();
    while path.len() < 64_000 {
        path.push_str("/conversations/participants");
    }
    let c = client();
    // The quickest of a few tries: the work is the same each time, and a busy machine only
    // adds to it. A recursive matcher took 19 to 29 s here, every time; the linear one takes
    // well under a millisecond (the bound leaves room for a debug build).
    let mut quickest = Duration::MAX;
    for _ in 0..5 {
        let started = tokio::time::Instant::now();
        let (status, _, _) = get(&c, &pacer.url(&path)).await;
        quickest = quickest.min(started.elapsed());
        assert_eq!(status, 200);
        if quickest < Duration::from_millis(50) {
            break;
        }
    }
    assert!(
        quickest < Duration::from_millis(50),
        "answered after {quickest:?} at best"
    );
}

/// The `route_match` and `normalize_path` fuzz targets on the stable toolchain: random inputs,
/// the normaliser's drawn mostly from the bytes that make escapes and dot segments.
#[test]
fn fuzz_smoke() {
    use rand::{Rng, SeedableRng};
    let cases: u32 = std::env::var("PACER_FUZZ_SMOKE_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let mut rng = rand::rngs::StdRng::seed_from_u64(22);
    let path_bytes = b"%2eE5fF7a./~-_%zZ\xc3\xa9";
    for _ in 0..cases {
        let len = rng.random_range(0..40);
        let route: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        pacer::route::pattern::fuzz_entry(&route);
        let path: Vec<u8> = (0..len)
            .map(|_| match rng.random_range(0..8) {
                0 => rng.random(),
                _ => path_bytes[rng.random_range(0..path_bytes.len())],
            })
            .collect();
        pacer::route::normalize::fuzz_entry(&path);
    }
}

#[tokio::test]
async fn requests_still_queued_at_the_drain_deadline_get_503() {
    let upstream = Recorder::start().await;
    let yaml = "
upstreams:
  api: { base_url: 'http://{mock}' }
server: { drain_timeout: 1s }
limits:
  slow: { rate: 1/min, burst: 1, queue: { max_depth: 10, max_wait: 1h } }
routes:
  - { match: 'GET /api/v2/**', limits: [slow] }
";
    let (mut pacer, limits) = start_pacer_limits(yaml, upstream.addr).await;
    let c = client();
    assert_eq!(get(&c, &pacer.url("/api/v2/users")).await.0, 200);
    let mut queued = Vec::new();
    for n in 1..=3 {
        let (c, url) = (c.clone(), pacer.url("/api/v2/users"));
        queued.push(tokio::spawn(async move {
            let req = request("GET", &url).body(Default::default()).unwrap();
            let res = c.request(req).await.expect("an answer, not a bare close");
            let (parts, body) = res.into_parts();
            let body = http_body_util::BodyExt::collect(body).await.unwrap();
            (parts.status, parts.headers, body.to_bytes())
        }));
        wait_for_limit(&limits, "slow", |s| s.queue_depth == n).await;
    }
    pacer.signal_stop();
    let stopped = pacer.task();
    for q in queued {
        let (status, headers, body) = q.await.unwrap();
        assert_eq!(status, 503);
        assert_eq!(json(&body)["code"], "pacer.shutting_down");
        assert_eq!(headers["retry-after"], "1");
    }
    tokio::time::timeout(Duration::from_secs(10), stopped)
        .await
        .expect("pacer stops after the drain deadline")
        .unwrap()
        .unwrap();
    assert_eq!(upstream.lines().len(), 1, "nothing queued was sent");
}

/// Sends a POST head declaring 100 bytes, then one byte every 200 ms (10 at most, then
/// nothing); returns what pacer answered within 5 s, if anything.
async fn drip_post(addr: SocketAddr) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = "POST /api/v2/things HTTP/1.1\r\nhost: api.test\r\ncontent-length: 100\r\n\r\n";
    s.write_all(head.as_bytes()).await.unwrap();
    let (mut read, mut write) = s.into_split();
    let drip = tokio::spawn(async move {
        for _ in 0..10 {
            if write.write_all(b"x").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Hold the connection open without sending more.
        tokio::time::sleep(Duration::from_secs(10)).await;
    });
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), read.read_to_end(&mut out)).await;
    drip.abort();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn a_body_sent_too_slowly_gets_408_and_is_not_forwarded() {
    let upstream = Recorder::start().await;
    let yaml = "
upstreams:
  api: { base_url: 'http://{mock}', hosts: [api.test] }
server: { body_timeout: 1s }
";
    let pacer = start_pacer(yaml, upstream.addr).await;
    let started = tokio::time::Instant::now();
    let drips: Vec<_> = (0..20)
        .map(|_| tokio::spawn(drip_post(pacer.addr)))
        .collect();
    for drip in drips {
        let reply = drip.await.unwrap();
        assert!(reply.starts_with("HTTP/1.1 408"), "{reply:?}");
        assert!(reply.contains("pacer.request.body_timeout"), "{reply}");
    }
    // Each answered at its 1 s deadline, and its connection closed (read_to_end returned).
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(upstream.lines().is_empty(), "{:?}", upstream.lines());
}

/// 1500 clients connect at once before pacer accepts any (as when it is busy): every connect
/// completes at once, none waits for a SYN retransmit (1 s) because the backlog was full.
#[tokio::test]
async fn a_burst_of_1500_connects_finds_room_in_the_backlog() {
    let upstream = Recorder::start().await;
    let listener = pacer::proxy::listen("127.0.0.1:0".parse().unwrap(), None).unwrap();
    let addr = listener.local_addr().unwrap();
    let connects: Vec<_> = (0..1500)
        .map(|_| {
            tokio::spawn(async move {
                let started = tokio::time::Instant::now();
                let conn = tokio::net::TcpStream::connect(addr).await;
                (started.elapsed(), conn)
            })
        })
        .collect();
    let mut streams = Vec::new();
    let mut slowest = Duration::ZERO;
    for c in connects {
        let (took, conn) = tokio::time::timeout(Duration::from_secs(10), c)
            .await
            .expect("connected within 10 s")
            .unwrap();
        slowest = slowest.max(took);
        streams.push(conn.expect("connected"));
    }
    assert!(
        slowest < Duration::from_millis(900),
        "a connect took {slowest:?}"
    );
    // They are real: pacer, started now, answers on the last of them.
    let yaml = basic_config().replace("{mock}", &upstream.addr.to_string());
    let config = pacer::Config::parse(&yaml, std::path::Path::new(".")).unwrap();
    let listeners = pacer::app::Listeners {
        proxy: listener,
        admin: None,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = pacer::app::App::new(config).unwrap();
    let serving = tokio::spawn(app.serve(listeners, async move {
        let _ = stopped.await;
    }));
    let mut last = streams.pop().unwrap();
    last.write_all(b"GET /x HTTP/1.1\r\nhost: api.test\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    last.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    drop((streams, last));
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), serving).await;
}

#[test]
fn server_backlog_and_body_timeout_are_checked() {
    let parse = |server: &str| {
        let yaml =
            format!("upstreams: {{ a: {{ base_url: 'http://127.0.0.1:1' }} }}\nserver: {server}\n");
        pacer::Config::parse(&yaml, std::path::Path::new("."))
    };
    let ok = parse("{ backlog: 2048, body_timeout: 5s }").unwrap();
    assert_eq!(ok.server.backlog, Some(2048));
    assert_eq!(ok.server.body_timeout, Duration::from_secs(5));
    for (bad, field) in [
        ("{ backlog: 0 }", "server.backlog"),
        ("{ backlog: 70000 }", "server.backlog"),
        ("{ body_timeout: 0s }", "server.body_timeout"),
    ] {
        let err = parse(bad).unwrap_err().to_string();
        assert!(
            err.contains(field) && err.contains("line 2"),
            "{bad}: {err}"
        );
    }
}
