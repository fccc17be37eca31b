//! The pass-through proxy end to end: pacer and the mock in-process on port 0.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use sha2::{Digest, Sha256};

use crate::support::*;

#[tokio::test]
async fn origin_form_goes_to_the_default_upstream() {
    let mock = start_mock_default().await;
    let pacer = start_pacer(basic_config(), mock.addr).await;
    let (status, headers, body) = get(&client(), &pacer.url("/api/v2/users")).await;
    assert_eq!(status, 200);
    assert!(headers.contains_key("inin-correlation-id"));
    assert!(json(&body)["entities"].is_array());
    assert_eq!(mock_stats(&mock).await["requests_total"], 1);
}

#[tokio::test]
async fn absolute_form_goes_to_the_upstream_listing_the_host() {
    let mock = start_mock_default().await;
    let pacer = start_pacer(basic_config(), mock.addr).await;
    let raw =
        "GET http://API.test/__mock/echo HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n";
    let res = raw_exchange(pacer.addr, raw.as_bytes()).await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    // The upstream sees its own authority as Host, not the name the client used.
    let body = &res[res.find("\r\n\r\n").unwrap() + 4..];
    let echo = json(body.as_bytes());
    assert_eq!(echo["headers"]["host"][0], mock.addr.to_string());
    // And the request target in origin-form, as a client talking to it directly would send.
    assert_eq!(echo["uri"], "/__mock/echo");
}

#[tokio::test]
async fn unknown_hosts_get_403_and_nothing_is_forwarded() {
    let mock = start_mock_default().await;
    let pacer = start_pacer(basic_config(), mock.addr).await;
    for target in ["http://evil.example/api/v2/users", "http://127.0.0.1:1/x"] {
        let raw = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let res = raw_exchange(pacer.addr, raw.as_bytes()).await;
        assert!(res.starts_with("HTTP/1.1 403"), "{res}");
        assert!(res.contains("\"code\":\"pacer.host.forbidden\""), "{res}");
    }
    let res = raw_exchange(
        pacer.addr,
        b"CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n",
    )
    .await;
    assert!(res.starts_with("HTTP/1.1 403"), "{res}");
    assert_eq!(mock_stats(&mock).await["requests_total"], 0);
}

#[tokio::test]
async fn hop_by_hop_headers_are_removed_and_end_to_end_kept() {
    let mock = start_mock_default().await;
    let pacer = start_pacer(basic_config(), mock.addr).await;
    let req = request("GET", &pacer.url("/__mock/echo"))
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "secret-of-this-connection")
        .header("keep-alive", "timeout=5")
        .header("proxy-connection", "keep-alive")
        .header("proxy-authorization", "Basic Zm9vOmJhcg==")
        .header("te", "trailers")
        .header("trailer", "x-checksum")
        .header("upgrade", "h2c")
        .header("authorization", "Bearer token-1")
        .header("x-end-to-end", "kept")
        .body(Full::default())
        .unwrap();
    let (status, _, body) = send(&client(), req).await;
    assert_eq!(status, 200);
    let headers = &json(&body)["headers"];
    for gone in [
        "x-hop",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "te",
        "trailer",
        "upgrade",
    ] {
        assert!(
            headers.get(gone).is_none(),
            "{gone} reached the upstream: {headers}"
        );
    }
    assert_eq!(headers["authorization"][0], "Bearer token-1");
    assert_eq!(headers["x-end-to-end"][0], "kept");
    assert_eq!(headers["host"][0], mock.addr.to_string());
}

#[tokio::test]
async fn a_large_put_body_arrives_intact() {
    let mock = start_mock_default().await;
    let pacer = start_pacer(basic_config(), mock.addr).await;
    let body: Vec<u8> = (0..5 * 1024 * 1024u32)
        .map(|i| (i * 31 % 251) as u8)
        .collect();
    let expected = hex(&Sha256::digest(&body));
    let req = request("PUT", &pacer.url("/api/v2/flows/flow-1"))
        .header("content-type", "application/octet-stream")
        .body(Full::new(Bytes::from(body.clone())))
        .unwrap();
    let (status, headers, _) = send(&client(), req).await;
    assert_eq!(status, 200);
    assert_eq!(
        headers["x-mock-received-bytes"],
        body.len().to_string().as_str()
    );
    assert_eq!(headers["x-mock-received-sha256"], expected.as_str());
}

#[tokio::test]
async fn two_hundred_requests_on_one_keep_alive_connection_lose_nothing() {
    let mock = start_mock_default().await;
    let pacer = start_pacer(basic_config(), mock.addr).await;
    let stream = tokio::net::TcpStream::connect(pacer.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    for i in 0..200 {
        let req = request("GET", &format!("/api/v2/users?page={i}"))
            .header("host", "pacer")
            .body(Full::<Bytes>::default())
            .unwrap();
        sender.ready().await.expect("connection stays open");
        let res = sender.send_request(req).await.unwrap();
        assert_eq!(res.status(), 200, "request {i}");
        http_body_util::BodyExt::collect(res.into_body())
            .await
            .unwrap();
    }
    // A per-token limit of 300 per minute would have cut in otherwise; default mock allows it.
    assert_eq!(mock_stats(&mock).await["requests_total"], 200);
    assert!(!conn.is_finished(), "the client connection was kept alive");
}

#[tokio::test]
async fn malformed_requests_get_400() {
    let mock = start_mock_default().await;
    let pacer = start_pacer(basic_config(), mock.addr).await;
    // Not HTTP at all: the parser refuses it.
    let res = raw_exchange(pacer.addr, b"GARBAGE\r\n\r\n").await;
    assert!(res.starts_with("HTTP/1.1 400"), "{res}");
    // Parses, but asterisk-form cannot be proxied: pacer's own JSON error.
    let res = raw_exchange(pacer.addr, b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(res.starts_with("HTTP/1.1 400"), "{res}");
    assert!(res.contains("pacer.request.malformed"), "{res}");
    assert_eq!(mock_stats(&mock).await["requests_total"], 0);
}

#[tokio::test]
async fn an_oversized_header_section_gets_431() {
    let mock = start_mock_default().await;
    let pacer = start_pacer(basic_config(), mock.addr).await;
    let big = "a".repeat(70 * 1024);
    let raw = format!("GET /api/v2/users HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n");
    let res = raw_exchange(pacer.addr, raw.as_bytes()).await;
    assert!(
        res.starts_with("HTTP/1.1 431"),
        "{}",
        &res[..res.len().min(300)]
    );
    assert!(res.contains("pacer.request.headers_too_large"), "{res}");
    // The connection-level damage stays on that connection: the next one works.
    let (status, _, _) = get(&client(), &pacer.url("/api/v2/users")).await;
    assert_eq!(status, 200);
}

/// Up to 100 header fields pass; past that hyper answers 431 itself (no JSON body), before the
/// request reaches pacer's layers, and nothing is forwarded.
#[tokio::test]
async fn more_than_100_header_fields_get_431_and_100_pass() {
    let mock = start_mock_default().await;
    let pacer = start_pacer(basic_config(), mock.addr).await;
    let head = |fields: usize| {
        // Host and Connection count among the fields.
        let extra: String = (0..fields - 2).map(|i| format!("X-F{i}: v\r\n")).collect();
        format!("GET /api/v2/users HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n")
    };
    // (fields, status line, requests the mock has seen after it)
    for (fields, status, forwarded) in [(100, "HTTP/1.1 200", 1), (101, "HTTP/1.1 431", 1)] {
        let res = raw_exchange(pacer.addr, head(fields).as_bytes()).await;
        assert!(res.starts_with(status), "{}", &res[..res.len().min(300)]);
        assert_eq!(mock_stats(&mock).await["requests_total"], forwarded);
    }
    let (status, _, _) = get(&client(), &pacer.url("/api/v2/users")).await;
    assert_eq!(status, 200);
}

/// Slow-loris protection: a client that starts a request head and never finishes it is cut off
/// after the 30 s header-read timeout, and not before. Paused time: the clock jumps ahead while
/// everything waits, so the test takes no real 30 s.
#[tokio::test(start_paused = true)]
async fn a_request_head_never_finished_is_cut_off_after_30_s() {
    let mock = start_mock_default().await;
    let pacer = start_pacer(basic_config(), mock.addr).await;
    let mut s = connect_and_send(pacer.addr, b"GET /api/v2/users HTTP/1.1\r\nHost: x\r\n").await;
    let out = closed_after_30_s(&mut s).await;
    let text = String::from_utf8_lossy(&out);
    assert!(out.is_empty() || text.starts_with("HTTP/1.1 408"), "{text}");
    assert_eq!(mock_stats(&mock).await["requests_total"], 0);
}

/// The same clock bounds a kept-alive connection's silence after an answered request.
#[tokio::test(start_paused = true)]
async fn a_kept_alive_connection_silent_for_30_s_is_closed() {
    use tokio::io::AsyncReadExt;
    let mock = start_mock_default().await;
    let pacer = start_pacer(basic_config(), mock.addr).await;
    let mut s =
        connect_and_send(pacer.addr, b"GET /api/v2/users HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut head = Vec::new();
    while !String::from_utf8_lossy(&head).contains("\r\n\r\n") {
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before answering");
        head.extend_from_slice(&buf[..n]);
    }
    assert!(head.starts_with(b"HTTP/1.1 200"));
    closed_after_30_s(&mut s).await;
}

async fn connect_and_send(addr: std::net::SocketAddr, bytes: &[u8]) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    s
}

/// Waits for pacer to close `s`, which must take 30 s (paused time) from now; returns what it
/// wrote before closing.
async fn closed_after_30_s(s: &mut tokio::net::TcpStream) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let start = tokio::time::Instant::now();
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(120), s.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the connection was still open after 120 s");
    let waited = start.elapsed();
    assert!(
        (30..31).contains(&waited.as_secs()),
        "closed after {waited:?}"
    );
    out
}

#[tokio::test]
async fn an_oversized_body_gets_413() {
    let mock = start_mock_default().await;
    let yaml = format!("{}server: {{ max_body_bytes: 1024 }}\n", basic_config());
    let pacer = start_pacer(&yaml, mock.addr).await;
    let req = request(
        "POST",
        &pacer.url("/api/v2/analytics/conversations/details/query"),
    )
    .body(Full::new(Bytes::from(vec![b'x'; 4096])))
    .unwrap();
    let (status, _, body) = send(&client(), req).await;
    assert_eq!(status, 413);
    assert_eq!(json(&body)["code"], "pacer.request.body_too_large");
    assert_eq!(mock_stats(&mock).await["requests_total"], 0);
}

#[tokio::test]
async fn a_dead_upstream_answers_502_promptly() {
    // Bind and drop: nothing listens on that port any more, so connects are refused.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let pacer = start_pacer(
        "upstreams:\n  dead:\n    base_url: http://{mock}\n    timeouts: { connect: 2s }\n",
        dead,
    )
    .await;
    let started = std::time::Instant::now();
    let (status, _, body) = get(&client(), &pacer.url("/api/v2/users")).await;
    assert_eq!(status, 502);
    let doc = json(&body);
    assert_eq!(doc["code"], "pacer.upstream.unreachable");
    assert_eq!(doc["status"], 502);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered within the connect timeout"
    );
}

#[tokio::test]
async fn an_upstream_that_resets_gets_502() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream); // accept, then close without a word
        }
    });
    let pacer = start_pacer("upstreams:\n  rude:\n    base_url: http://{mock}\n", addr).await;
    let (status, _, body) = get(&client(), &pacer.url("/api/v2/users")).await;
    assert_eq!(status, 502);
    assert_eq!(json(&body)["code"], "pacer.upstream.unreachable");
}

#[tokio::test]
async fn a_slow_upstream_gets_504() {
    let mock = start_mock_default().await;
    let pacer = start_pacer(
        "upstreams:\n  mock:\n    base_url: http://{mock}\n    timeouts: { request: 200ms }\n",
        mock.addr,
    )
    .await;
    let (status, _, body) = get(&client(), &pacer.url("/__mock/delay/5000")).await;
    assert_eq!(status, 504);
    assert_eq!(json(&body)["code"], "pacer.upstream.timeout");
}

#[tokio::test]
async fn an_https_upstream_is_trusted_through_ca_file() {
    let tls = pacer::mock::MockTls::self_signed().unwrap();
    let dir = temp_dir("proxy");
    let ca = dir.join("mock-ca.pem");
    std::fs::write(&ca, &tls.cert_pem).unwrap();
    let mock = start_mock(pacer::mock::MockConfig {
        tls: Some(tls),
        ..Default::default()
    })
    .await;
    let yaml = format!(
        "upstreams:\n  mock:\n    base_url: https://localhost:{}\n    tls: {{ ca_file: {} }}\n",
        mock.addr.port(),
        ca.display()
    );
    let pacer = start_pacer(&yaml, mock.addr).await;
    let (status, _, _) = get(&client(), &pacer.url("/api/v2/users")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests() {
    // Test helpers like /__mock/delay are not counted in flight, so slow down the API itself.
    let mock = start_mock(pacer::mock::MockConfig {
        latency: Duration::from_millis(400),
        ..Default::default()
    })
    .await;
    let mut pacer = start_pacer(basic_config(), mock.addr).await;
    let c = client();
    let slow = tokio::spawn({
        let url = pacer.url("/api/v2/users");
        async move { get(&c, &url).await.0 }
    });
    // Wait until the request is in flight at the mock, then ask pacer to stop.
    wait_until(|| async { mock_stats(&mock).await["in_flight"] == 1 }).await;
    pacer.signal_stop();
    let task = pacer.task();
    assert_eq!(slow.await.unwrap(), 200, "the in-flight request finished");
    task.await.unwrap().unwrap();
    assert!(
        tokio::net::TcpStream::connect(pacer.addr).await.is_err(),
        "no longer accepting"
    );
}
