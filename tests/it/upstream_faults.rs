//! An upstream that misbehaves: stalled bodies, stale connections, malformed framing. Each test
//! puts pacer in front of the fault upstream of `support/faulty.rs`.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::faulty::{read_until_closed, start_faulty, Fault, BIG_DECLARED, STALL_SENT};
use crate::support::*;

fn by_path(head: &str) -> Fault {
    let path = head.split(' ').nth(1).unwrap_or("");
    match path {
        "/stall" => Fault::StallBody,
        "/hold" => Fault::Hold,
        "/close" => Fault::OkThenClose,
        "/reuse" => Fault::ClosesOnReuse,
        "/cl-te" => Fault::LengthAndChunked,
        "/big" => Fault::BigBody,
        _ => Fault::Ok,
    }
}

/// The value of one series in the admin listener's `/metrics`, found by its labels.
async fn metric(admin: SocketAddr, name: &str, label: &str) -> f64 {
    let (_, _, body) = get(&client(), &format!("http://{admin}/metrics")).await;
    let text = String::from_utf8_lossy(&body).into_owned();
    text.lines()
        .find(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} with {label} in:\n{text}"))
}

/// Opens a connection to pacer and sends one request head on it.
async fn raw_request(pacer: &Running, head: &str) -> TcpStream {
    let mut s = TcpStream::connect(pacer.addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s
}

const EIGHT: &str = "
upstreams:
  api: { base_url: 'http://{mock}', timeouts: { request: 1s, body_idle: 10s } }
limits:
  eight: { concurrency: 8, queue: { max_wait: 20s } }
routes:
  - { match: 'GET /**', limits: [eight] }
";

/// Eight answers that stall after their first kilobyte, on a route that lets eight run at once:
/// each is cut at `timeouts.request` (the client's connection closes, as the answer had begun),
/// its slot frees, and the next request goes through at once.
#[tokio::test]
async fn stalled_bodies_end_by_the_request_timeout_and_free_their_slots() {
    let upstream = start_faulty(by_path).await;
    let (pacer, admin) = start_pacer_admin(EIGHT, upstream.addr).await;
    let mut stalled = Vec::new();
    for _ in 0..8 {
        stalled.push(raw_request(&pacer, "GET /stall HTTP/1.1\r\nhost: api\r\n\r\n").await);
    }
    let started = tokio::time::Instant::now();
    for (i, s) in stalled.iter_mut().enumerate() {
        let (read, closed) = read_until_closed(s, Duration::from_secs(5)).await;
        assert!(closed, "stalled answer {i} still open after 5 s");
        assert!(
            read > STALL_SENT,
            "answer {i}: the head and the first 1 KB came first"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(4));
    let answered = tokio::time::timeout(Duration::from_secs(2), async {
        get(&client(), &pacer.url("/ok")).await
    });
    let (status, _, body) = answered.await.expect("the route is not locked");
    assert_eq!((status.as_u16(), &body[..]), (200, &b"ok"[..]));
    let cut = metric(admin, "pacer_upstream_body_cut_total", "reason=\"timeout\"").await;
    assert_eq!(cut, 8.0);
}

/// A body that pauses longer than `timeouts.body_idle` is cut then, well before the whole
/// response's timeout.
#[tokio::test]
async fn a_body_that_pauses_past_body_idle_is_cut() {
    let upstream = start_faulty(by_path).await;
    let yaml = EIGHT.replace(
        "request: 1s, body_idle: 10s",
        "request: 60s, body_idle: 300ms",
    );
    let (pacer, admin) = start_pacer_admin(&yaml, upstream.addr).await;
    let mut s = raw_request(&pacer, "GET /stall HTTP/1.1\r\nhost: api\r\n\r\n").await;
    let (read, closed) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(
        closed && read > STALL_SENT,
        "closed {closed} after {read} bytes"
    );
    let cut = metric(admin, "pacer_upstream_body_cut_total", "reason=\"idle\"").await;
    assert_eq!(cut, 1.0);
}

const ONE_SLOT: &str = "
upstreams:
  api: { base_url: 'http://{mock}', timeouts: { request: 1s, body_idle: 10s } }
limits:
  one: { concurrency: 1, queue: { max_wait: 20s } }
routes:
  - { match: 'GET /**', limits: [one] }
";

/// A client that stops reading a large answer (the upstream would send it at once): hyper then
/// waits for the client and stops pulling the body, so the body's own clocks are never looked
/// at. The answer is still cut at `timeouts.request`: the route's only slot frees for the next
/// request, the slow reader's connection is closed, and the cut is counted.
#[tokio::test]
async fn a_client_that_stops_reading_is_cut_at_the_request_timeout() {
    let upstream = start_faulty(by_path).await;
    let (pacer, admin) = start_pacer_admin(ONE_SLOT, upstream.addr).await;
    // A small receive window, so pacer's writes back up after little more than its own buffers.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut slow = socket.connect(pacer.addr).await.unwrap();
    slow.write_all(b"GET /big HTTP/1.1\r\nhost: api\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    slow.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200", "the answer has begun");
    // The slot is the slow reader's until its answer is cut (1 s); without the cut the next
    // request would wait its whole max_wait (20 s).
    let answered = tokio::time::timeout(Duration::from_secs(4), async {
        get(&client(), &pacer.url("/ok")).await
    });
    let (status, _, body) = answered.await.expect("the slot is freed");
    assert_eq!((status.as_u16(), &body[..]), (200, &b"ok"[..]));
    let (read, closed) = read_until_closed(&mut slow, Duration::from_secs(5)).await;
    assert!(
        closed && read < BIG_DECLARED / 2,
        "closed {closed} after {read} bytes"
    );
    let cut = metric(admin, "pacer_upstream_body_cut_total", "reason=\"timeout\"").await;
    assert_eq!(cut, 1.0);
}

/// The same inside an intercepted CONNECT, where hyper writes to pacer's TLS session with the
/// client rather than to the socket.
#[tokio::test]
async fn a_client_that_stops_reading_inside_an_intercepted_connect_is_cut_too() {
    use crate::support::tunnel::{connect, http1, pacer_with_ca, tls};
    let upstream = start_faulty(by_path).await;
    let yaml = ONE_SLOT
        .replace("{mock}", &upstream.addr.to_string())
        .replace("api: { base_url:", "api: { hosts: [api.test], base_url:");
    let (pacer, ca) = pacer_with_ca(yaml.trim_start(), &temp_dir("slow-reader-tls")).await;
    let ca_pem = std::fs::read_to_string(ca).unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut raw = socket.connect(pacer.addr).await.unwrap();
    raw.write_all(b"CONNECT api.test:443 HTTP/1.1\r\nHost: api.test:443\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(raw.read_u8().await.unwrap());
    }
    assert!(head.starts_with(b"HTTP/1.1 200"), "{head:?}");
    let mut slow = tls(raw, "api.test", &ca_pem).await.unwrap();
    slow.write_all(b"GET /big HTTP/1.1\r\nhost: api.test\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    slow.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200", "the answer has begun");
    let answered = tokio::time::timeout(Duration::from_secs(4), async {
        let (stream, head) = connect(pacer.addr, "api.test:443", "").await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let mut send = http1(tls(stream, "api.test", &ca_pem).await.unwrap()).await;
        let req = request("GET", "/ok").header("host", "api.test");
        send.send_request(req.body(Default::default()).unwrap())
            .await
            .unwrap()
            .status()
    });
    assert_eq!(answered.await.expect("the slot is freed"), 200);
    let mut read = 0;
    let mut buf = vec![0u8; 64 * 1024];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(n @ 1..) = slow.read(&mut buf).await {
            read += n;
        }
    });
    assert!(closed.await.is_ok(), "still open after {read} bytes");
    assert!(read < BIG_DECLARED / 2, "closed after {read} bytes");
}

const ONE_AT_A_TIME: &str = "
upstreams:
  api: { base_url: 'http://{mock}' }
limits:
  one: { concurrency: 1, queue: { max_depth: 100, max_wait: 30s } }
routes:
  - { match: 'POST /**', limits: [one] }
  - { match: 'GET /hold', limits: [one] }
";

/// Clients that give up while their POSTs wait for a slot: none of those POSTs may reach the
/// upstream. The slots open the moment the clients close, before pacer has looked at their
/// connections again (a live limit change, in the same instant), and idle upstream connections
/// are ready to carry the POSTs at once: the race in which an abandoned request went out.
#[tokio::test]
async fn a_queued_request_whose_client_left_is_never_sent() {
    let upstream = start_faulty(by_path).await;
    let (pacer, limits) = start_pacer_limits(ONE_AT_A_TIME, upstream.addr).await;
    // Twenty idle upstream connections in pacer's pool.
    let c = client();
    let url = pacer.url("/ok");
    let warm: Vec<_> = (0..20).map(|_| get(&c, &url)).collect();
    for (status, _, _) in futures_util::future::join_all(warm).await {
        assert_eq!(status, 200);
    }
    let _holder = raw_request(&pacer, "GET /hold HTTP/1.1\r\nhost: api\r\n\r\n").await;
    wait_for_limit(&limits, "one", |s| s.in_flight == 1).await;
    let post = "POST /p HTTP/1.1\r\nhost: api\r\ncontent-length: 1\r\n\r\nx";
    let mut queued = Vec::new();
    for _ in 0..20 {
        queued.push(raw_request(&pacer, post).await);
    }
    wait_for_limit(&limits, "one", |s| s.queue_depth == 20).await;
    drop(queued);
    let open = pacer::shape::LimitUpdate {
        concurrency: Some(100),
        ..Default::default()
    };
    limits.by_name("one").unwrap().update(open).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        upstream.count("POST"),
        0,
        "abandoned POSTs reached the upstream"
    );
    wait_for_limit(&limits, "one", |s| s.queue_depth == 0 && s.in_flight == 1).await;
}

/// An upstream that closes a kept-alive connection as pacer sends the next request on it, with no
/// answer: a GET (idempotent, nothing to lose) goes on another connection instead of failing; a
/// POST, which the upstream may have acted on, is not sent twice.
#[tokio::test]
async fn a_request_on_a_connection_closed_under_it_goes_on_another() {
    let upstream = start_faulty(by_path).await;
    let pacer = start_pacer(ONE_AT_A_TIME, upstream.addr).await;
    let c = client();
    for i in 0..10 {
        let (status, _, body) = get(&c, &pacer.url("/reuse")).await;
        assert_eq!(
            status,
            200,
            "request {i}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    assert_eq!(upstream.count("GET /reuse"), 10);
    // Each GET after the first found its connection closed and took a new one.
    assert_eq!(upstream.accepted(), 10);
    // The last GET's connection is idle in the pool; the POST goes on it and is closed under.
    let post = request("POST", &pacer.url("/reuse")).body(Default::default());
    let (status, _, body) = send(&c, post.unwrap()).await;
    assert_eq!(status, 502);
    assert_eq!(json(&body)["code"], "pacer.upstream.unreachable");
    assert_eq!(upstream.accepted(), 10, "the POST was not sent again");
}

/// An answer with both Content-Length and Transfer-Encoding is refused as a 502, counted as one.
#[tokio::test]
async fn an_answer_with_length_and_chunked_framing_is_a_502() {
    let upstream = start_faulty(by_path).await;
    let (pacer, admin) = start_pacer_admin(ONE_AT_A_TIME, upstream.addr).await;
    for _ in 0..2 {
        let (status, _, body) = get(&client(), &pacer.url("/cl-te")).await;
        assert_eq!(status, 502);
        assert_eq!(json(&body)["code"], "pacer.upstream.invalid");
    }
    // Its connection was not reused: the second request needed a new one.
    assert_eq!(upstream.accepted(), 2);
    let counted = metric(admin, "pacer_requests_total", "status=\"502\"").await;
    assert_eq!(counted, 2.0);
}

/// The request head the upstream received for `raw` sent through pacer, lower-cased.
async fn head_at_upstream(raw: &str) -> String {
    let upstream = start_faulty(by_path).await;
    let pacer = start_pacer(ONE_AT_A_TIME, upstream.addr).await;
    let answer = raw_exchange(pacer.addr, raw.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let heads = upstream.heads.lock().unwrap();
    assert_eq!(heads.len(), 1, "{heads:?}");
    heads[0].to_ascii_lowercase()
}

/// pacer frames the body it sends itself: the client's Transfer-Encoding fields never reach the
/// upstream as they were written.
#[tokio::test]
async fn the_clients_transfer_encoding_is_not_forwarded() {
    for te in [
        "transfer-encoding: identity, chunked\r\n",
        "transfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n",
    ] {
        let raw = format!("PUT /te HTTP/1.1\r\nhost: api\r\n{te}\r\n2\r\nok\r\n0\r\n\r\n");
        let head = head_at_upstream(&raw).await;
        let framing: Vec<&str> = head
            .lines()
            .filter(|l| l.starts_with("transfer-encoding") || l.starts_with("content-length"))
            .collect();
        assert!(
            framing == ["content-length: 2"] || framing == ["transfer-encoding: chunked"],
            "{te:?} reached the upstream as {framing:?}"
        );
    }
}

/// An `Upgrade: h2c` would let the API switch to HTTP/2, unshaped: the request goes on as plain
/// HTTP/1.1 without it.
#[tokio::test]
async fn an_h2c_upgrade_is_not_forwarded() {
    let raw = "GET /x HTTP/1.1\r\nhost: api\r\nconnection: upgrade, http2-settings\r\n\
               upgrade: h2c\r\nhttp2-settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n";
    let head = head_at_upstream(raw).await;
    for name in ["upgrade", "connection", "http2-settings"] {
        assert!(
            !head.contains(&format!("\n{name}:")),
            "{name} forwarded: {head}"
        );
    }
}

/// After a burst, pacer keeps at most `max_idle` idle connections to an upstream (per worker
/// thread) and closes the rest at once.
#[tokio::test]
async fn idle_upstream_connections_are_capped() {
    let upstream = start_faulty(by_path).await;
    let yaml = "upstreams:\n  api: { base_url: 'http://{mock}', max_idle: 2 }\n";
    let pacer = start_pacer(yaml, upstream.addr).await;
    let c = client();
    let url = pacer.url("/ok");
    let burst: Vec<_> = (0..10).map(|_| get(&c, &url)).collect();
    for (status, _, _) in futures_util::future::join_all(burst).await {
        assert_eq!(status, 200);
    }
    let opened = upstream.accepted();
    assert!(opened > 2, "the burst opened {opened} connections");
    for _ in 0..200 {
        if upstream.closed() == opened - 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(upstream.closed(), opened - 2, "of {opened} connections");
}

/// A client that sends a whole request and then closes its sending side (HTTP/1.1 allows the
/// half-close) gets its answer, and then pacer closes the connection.
#[tokio::test]
async fn a_client_that_half_closes_after_its_request_gets_the_answer() {
    let upstream = start_faulty(by_path).await;
    let pacer = start_pacer(ONE_AT_A_TIME, upstream.addr).await;
    for raw in [
        "GET /ok HTTP/1.1\r\nhost: api\r\n\r\n",
        "POST /ok HTTP/1.1\r\nhost: api\r\ncontent-length: 2\r\n\r\nhi",
    ] {
        let mut s = raw_request(&pacer, raw).await;
        s.shutdown().await.unwrap();
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut answer));
        read.await.expect("pacer closes after answering").unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{raw:?}: {answer:?}");
        assert!(answer.ends_with("\r\n\r\nok"), "{raw:?}: {answer:?}");
    }
    assert_eq!(upstream.heads.lock().unwrap().len(), 2);
}

/// A client that half-closes in the middle of its request body leaves a request that can never
/// complete: its connection is closed, not kept for ever.
#[tokio::test(start_paused = true)]
async fn a_half_close_in_the_middle_of_a_body_ends_the_connection() {
    let upstream = start_faulty(by_path).await;
    let pacer = start_pacer(ONE_AT_A_TIME, upstream.addr).await;
    let raw = "POST /ok HTTP/1.1\r\nhost: api\r\ncontent-length: 10\r\n\r\nhi";
    let mut s = raw_request(&pacer, raw).await;
    s.shutdown().await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(60), s.read_to_end(&mut answer));
    read.await.expect("the connection closes").unwrap();
    assert!(upstream.heads.lock().unwrap().is_empty());
}
