//! The proxy listener: accepts connections, serves HTTP/1.1 on them through the [`stack`], and
//! drains on shutdown.
//!
//! - `frontdoor.rs`: admission and target resolution.
//! - `stack.rs`: the layer order, and why.
//! - `observe.rs`: metrics and the log line for every answer the client sees.
//! - `rescue.rs`: errors to responses.
//! - `forward.rs`, `client.rs`, `tls_client.rs`: the upstream side.
//! - `headers.rs`, `body.rs`: shared helpers.

pub mod body;
pub mod client;
pub mod forward;
pub mod frontdoor;
pub mod headers;
pub mod observe;
pub mod rescue;
pub mod stack;
mod tls_client;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use http::{Method, Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use self::frontdoor::ConnInfo;
use self::stack::Stack;
use crate::config::Server;
use crate::error::Error;

/// How long a client may take to send a request head; slow-loris protection.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `stack` on `listener` until `shutdown` resolves, then lets in-flight requests finish
/// for up to `server.drain_timeout`.
pub async fn serve(
    listener: TcpListener,
    stack: Stack,
    server: Server,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Connections watch `drain` to start a graceful close; each holds a clone of `done_tx`, so
    // `done_rx` yields None once every connection has finished (the mini-redis pattern).
    let (drain_tx, drain_rx) = watch::channel(false);
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let conn = connection(stream, peer, stack.clone(), server, drain_rx.clone());
                    let done = done_tx.clone();
                    tokio::spawn(async move {
                        conn.await;
                        drop(done);
                    });
                }
                Err(e) => accept_error(e).await,
            },
        }
    }
    drop(listener);
    let _ = drain_tx.send(true);
    drop(done_tx);
    tracing::info!("stopped accepting; draining in-flight requests");
    match tokio::time::timeout(server.drain_timeout, done_rx.recv()).await {
        Ok(_) => tracing::info!("drained"),
        Err(_) => tracing::warn!(
            timeout_s = server.drain_timeout.as_secs_f64(),
            "drain timeout passed; closing the remaining connections"
        ),
    }
    Ok(())
}

/// Accept fails when the process is out of file descriptors or the peer reset early. Backing off
/// briefly keeps the loop from spinning while connections close and free descriptors.
async fn accept_error(e: std::io::Error) {
    tracing::warn!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_millis(20)).await;
}

/// Serves one client connection.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    stack: Stack,
    server: Server,
    mut drain: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(ConnInfo {
            peer,
            tunnel_upstream: None,
        });
        handle(stack.clone(), req)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        // Room past the configured header limit, so an oversized head still parses and gets
        // pacer's JSON 431 instead of hyper's bare one.
        .max_buf_size((server.max_header_bytes * 2).max(16 * 1024))
        .max_headers(512);
    let conn = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        res = conn.as_mut() => res,
        _ = async { drain.wait_for(|d| *d).await.map(|_| ()) } => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

async fn handle(
    stack: Stack,
    req: Request<Incoming>,
) -> Result<http::Response<body::Body>, std::convert::Infallible> {
    if req.method() == Method::CONNECT {
        return Ok(rescue::response(&Error::ForbiddenHost {
            host: req
                .uri()
                .authority()
                .map(|a| a.to_string())
                .unwrap_or_default(),
        }));
    }
    stack::call(stack, req).await
}
