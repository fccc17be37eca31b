//! Upstream connection reuse and thread-per-core serving, end to end: pacer in-process in front
//! of small upstreams that count the connections they accept.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::support;
use crate::support::*;

/// How an upstream treats its connections.
#[derive(Clone, Copy)]
enum Upstream {
    /// Keep-alive, as APIs do.
    KeepAlive,
    /// Closes every connection after one answer without saying so (no `Connection: close`),
    /// like a gateway whose idle timeout fires between two requests.
    ClosesSilently,
    /// Keep-alive, with each small answer's body sent in three pieces a moment apart, as a
    /// slow network splits them.
    SendsInPieces,
}

/// Starts an upstream on port 0 that answers 200 `ok`; returns its address and a counter of
/// the connections it accepted.
async fn counting_upstream(kind: Upstream) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            match kind {
                Upstream::KeepAlive => tokio::spawn(serve_keep_alive(stream)),
                Upstream::ClosesSilently => tokio::spawn(answer_once_and_close(stream)),
                Upstream::SendsInPieces => tokio::spawn(answer_in_pieces(stream)),
            };
        }
    });
    (addr, accepted)
}

async fn serve_keep_alive(stream: tokio::net::TcpStream) {
    let service = hyper::service::service_fn(|_req| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// Reads one request head, answers it as a keep-alive response would look, then closes.
async fn answer_once_and_close(mut stream: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    if read_head(&mut stream).await {
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .await;
    }
}

/// Answers every request on the connection with `abcdefghi`, declared up front, in pieces.
async fn answer_in_pieces(mut stream: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    while read_head(&mut stream).await {
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n")
            .await;
        for piece in [&b"abc"[..], b"def", b"ghi"] {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            let _ = stream.write_all(piece).await;
        }
    }
}

/// Reads one request head; false once the client has gone.
async fn read_head(stream: &mut tokio::net::TcpStream) -> bool {
    support::faulty::read_request(stream).await.is_some()
}

fn config() -> &'static str {
    "listen: 127.0.0.1:0\nupstreams:\n  api: { base_url: 'http://{mock}' }\n"
}

#[tokio::test]
async fn sequential_requests_reuse_one_upstream_connection() {
    let (upstream, accepted) = counting_upstream(Upstream::KeepAlive).await;
    let pacer = start_pacer(config(), upstream).await;
    let c = client();
    for i in 0..20 {
        let (status, _, body) = get(&c, &pacer.url(&format!("/api/v2/users?i={i}"))).await;
        assert_eq!(
            (status.as_u16(), &body[..]),
            (200, &b"ok"[..]),
            "request {i}"
        );
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

/// A small answer is read whole before the client gets it; one that arrives in pieces is
/// joined in order, and its connection still goes back to the pool.
#[tokio::test]
async fn a_small_answer_sent_in_pieces_arrives_whole() {
    let (upstream, accepted) = counting_upstream(Upstream::SendsInPieces).await;
    let pacer = start_pacer(config(), upstream).await;
    let c = client();
    for i in 0..3 {
        let (status, _, body) = get(&c, &pacer.url("/api/v2/users")).await;
        assert_eq!(
            (status.as_u16(), &body[..]),
            (200, &b"abcdefghi"[..]),
            "{i}"
        );
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_upstream_that_closes_idle_connections_loses_no_request() {
    let (upstream, accepted) = counting_upstream(Upstream::ClosesSilently).await;
    let pacer = start_pacer(config(), upstream).await;
    let c = client();
    for i in 0..20 {
        let (status, _, _) = get(&c, &pacer.url(&format!("/api/v2/users?i={i}"))).await;
        assert_eq!(status, 200, "request {i}");
    }
    // Every request needed a fresh connection, and none was lost on a closed one.
    assert_eq!(accepted.load(Ordering::SeqCst), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_threads_serve_concurrent_keep_alive_clients() {
    let mock = start_mock_default().await;
    let pacer = start_pacer_workers(basic_config(), mock.addr, 2).await;
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let url = pacer.url("/api/v2/users");
            tokio::spawn(async move {
                // One client per task: its own keep-alive connection, landing on some worker.
                let c = client();
                for i in 0..25 {
                    let (status, _, _) = get(&c, &format!("{url}?t={t}&i={i}")).await;
                    assert_eq!(status, 200, "client {t} request {i}");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(mock_stats(&mock).await["requests_total"], 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_threads_drain_in_flight_requests_on_shutdown() {
    let mock = start_mock(pacer::mock::MockConfig {
        latency: std::time::Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let mut pacer = start_pacer_workers(basic_config(), mock.addr, 2).await;
    let slow: Vec<_> = (0..4)
        .map(|_| {
            let url = pacer.url("/api/v2/users");
            tokio::spawn(async move { get(&client(), &url).await.0 })
        })
        .collect();
    // Stop once all four are in flight at the mock; each must still get its answer.
    for _ in 0..500 {
        if mock_stats(&mock).await["in_flight"] == 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(mock_stats(&mock).await["in_flight"], 4);
    pacer.signal_stop();
    let task = pacer.task();
    for s in slow {
        assert_eq!(s.await.unwrap(), 200);
    }
    task.await.unwrap().unwrap();
    assert!(tokio::net::TcpStream::connect(pacer.addr).await.is_err());
}
