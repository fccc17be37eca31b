//! WebSocket (and any Upgrade) through pacer: origin-form, absolute-form and intercepted.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::Message;

use crate::support::tunnel::{connect, http1, pacer_with_ca, tls};
use crate::support::upstream::{start_upstream, TestUpstream};
use crate::support::*;

fn yaml(up: &TestUpstream) -> String {
    format!(
        "upstreams:\n  api:\n    base_url: {}\n    hosts: [api.test]\nserver: {{ drain_timeout: 20s }}\n",
        up.base_url()
    )
}

/// Opens a WebSocket on `io` at `uri` and checks that a few messages echo back unchanged.
async fn echo_through<S>(io: S, uri: &str) -> tokio_tungstenite::WebSocketStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut ws, res) = tokio_tungstenite::client_async(uri, io)
        .await
        .expect("WebSocket handshake through pacer");
    assert_eq!(res.status(), 101);
    for text in ["hello", "second message", &"x".repeat(100_000)] {
        ws.send(Message::text(text)).await.unwrap();
        let echoed = tokio::time::timeout(Duration::from_secs(10), ws.next()).await;
        let echoed = echoed.expect("echo within 10s").unwrap().unwrap();
        assert_eq!(echoed.into_text().unwrap().as_str(), text);
    }
    ws.send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    let echoed = ws.next().await.unwrap().unwrap();
    assert_eq!(echoed.into_data().as_ref(), &[0u8, 1, 2, 255]);
    ws
}

#[tokio::test]
async fn websocket_through_origin_form() {
    let up = start_upstream(false).await;
    let pacer = start_pacer(&yaml(&up), up.addr).await;
    let tcp = tokio::net::TcpStream::connect(pacer.addr).await.unwrap();
    let mut ws = echo_through(tcp, &format!("ws://{}/ws", pacer.addr)).await;
    ws.close(None).await.unwrap();
}

#[tokio::test]
async fn websocket_through_absolute_form() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = start_upstream(false).await;
    let pacer = start_pacer(&yaml(&up), up.addr).await;
    let mut tcp = tokio::net::TcpStream::connect(pacer.addr).await.unwrap();
    // tungstenite writes origin-form, so the handshake is written by hand here.
    let key = tokio_tungstenite::tungstenite::handshake::client::generate_key();
    let head = format!(
        "GET http://api.test/ws HTTP/1.1\r\nHost: api.test\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut res = Vec::new();
    while !res.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        assert_eq!(tcp.read(&mut b).await.unwrap(), 1);
        res.push(b[0]);
    }
    let res = String::from_utf8(res).unwrap();
    assert!(res.starts_with("HTTP/1.1 101"), "{res}");
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    assert!(res.contains(&accept), "{res}");
    let role = tokio_tungstenite::tungstenite::protocol::Role::Client;
    let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(tcp, role, None).await;
    ws.send(Message::text("absolute")).await.unwrap();
    let echoed = ws.next().await.unwrap().unwrap();
    assert_eq!(echoed.into_text().unwrap().as_str(), "absolute");
}

#[tokio::test]
async fn websocket_through_an_intercepted_connect() {
    let up = start_upstream(true).await;
    let yaml = format!(
        "{}    tls: {{ ca_file: \"{}\" }}\n",
        yaml(&up).replace("server: { drain_timeout: 20s }\n", ""),
        up.cert_file.as_ref().unwrap().display()
    );
    let dir = temp_dir("upgrade");
    let (pacer, ca) = pacer_with_ca(&yaml, &dir).await;
    let ca_pem = std::fs::read_to_string(ca).unwrap();
    let (stream, head) = connect(pacer.addr, "api.test:443", "").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let stream = tls(stream, "api.test", &ca_pem).await.unwrap();
    let mut ws = echo_through(stream, "wss://api.test/ws").await;
    ws.close(None).await.unwrap();
}

#[tokio::test]
async fn a_refused_upgrade_leaves_the_connection_serving_http() {
    let up = start_upstream(false).await;
    let pacer = start_pacer(&yaml(&up), up.addr).await;
    let tcp = tokio::net::TcpStream::connect(pacer.addr).await.unwrap();
    let mut send = http1(tcp).await;
    // The upstream upgrades only /ws; elsewhere it answers 200 and the upgrade does not happen.
    let req = request("GET", "/not-ws")
        .header("host", "api.test")
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-version", "13")
        .body(Full::<Bytes>::default())
        .unwrap();
    let res = send.send_request(req).await.unwrap();
    assert_eq!(res.status(), 200);
    let echo = json(&res.into_body().collect().await.unwrap().to_bytes());
    assert_eq!(echo["headers"]["upgrade"][0], "websocket");
    send.ready().await.unwrap();
    let req = request("GET", "/next").header("host", "api.test");
    let res = send.send_request(req.body(Full::default()).unwrap()).await;
    assert_eq!(res.unwrap().status(), 200);
}

#[tokio::test]
async fn shutdown_closes_a_quiet_websocket() {
    let up = start_upstream(false).await;
    let mut pacer = start_pacer(&yaml(&up), up.addr).await;
    let tcp = tokio::net::TcpStream::connect(pacer.addr).await.unwrap();
    let mut ws = echo_through(tcp, &format!("ws://{}/ws", pacer.addr)).await;
    pacer.signal_stop();
    // drain_timeout is 20s; a quiet pipe closes long before.
    let done = tokio::time::timeout(Duration::from_secs(8), pacer.task()).await;
    done.expect("drained within 8s").unwrap().unwrap();
    let next = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
    assert!(
        matches!(next, Ok(None) | Ok(Some(Err(_)))),
        "the WebSocket was closed: {next:?}"
    );
}
