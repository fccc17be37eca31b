//! A Genesys-like mock API for rehearsals, demos and pacer's own tests.
//!
//! It speaks the platform's contract closely enough for a load test to not tell the difference:
//!
//! - `POST /oauth/token` (client credentials) issues a random bearer token.
//! - `/api/v2/**`, any method, answers a small entity list, with `ININ-Correlation-Id` and the
//!   `inin-ratelimit-*` headers. A request with a body gets `x-mock-received-bytes` and
//!   `x-mock-received-sha256` back, so tests can check a body arrived unaltered.
//! - Limits: 300 requests per 60 s per bearer token by default (tokenless requests share one
//!   key), plus optional per-route rates and concurrency caps. Windows are fixed and start at
//!   each key's first request (`mock/limits.rs` says why). Over a limit it answers the
//!   platform's exact 429.
//! - `ratelimit_headers:` (or `--ratelimit-headers`) sends another family of rate-limit headers
//!   instead ([`HeaderFamily`]: `x`, `ietf`, `ietf-structured`, `none`), for pacer's `learn:`.
//! - `retry_after:` makes the 429's `Retry-After` misbehave on purpose ([`RetryAfterMode`]).
//! - `/__mock/{echo,delay/MS,status/CODE,stats,reset}` help tests; they are never limited or
//!   counted.
//!
//! Module map: [`config`] (YAML), `service` (one request), `limits`, `stats`, `responses`
//! (the platform's bodies and headers), `helpers` (`/__mock`), [`tls`].

pub mod config;
pub mod tls;

mod basic;
mod helpers;
mod limits;
mod responses;
mod service;
mod stats;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

pub use self::config::{HeaderFamily, MockConfig, MockRoute, RetryAfterMode, WindowLimit};
pub use self::responses::{GARBAGE_RETRY_AFTER, HUGE_RETRY_AFTER};
use self::service::State;
pub use self::tls::MockTls;

/// How long in-flight requests get to finish once `shutdown` resolves.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// A TLS client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the mock on `listener` until `shutdown` resolves, then lets in-flight requests finish
/// (up to 10 s) and returns. With `config.tls` it serves HTTPS, after writing the certificate to
/// its `cert_out`.
pub async fn serve(
    listener: TcpListener,
    config: MockConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let acceptor = match &config.tls {
        Some(tls) => {
            tls.publish()?;
            Some(tls.acceptor()?)
        }
        None => None,
    };
    let state = Arc::new(State::new(config));
    let graceful = GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    spawn_connection(stream, state.clone(), acceptor.clone(), graceful.watcher());
                }
                Err(e) => {
                    // Usually out of file descriptors: give connections a moment to close.
                    tracing::warn!(error = %e, "mock accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("mock connections still busy after the drain timeout; closing them");
    }
    Ok(())
}

/// Serves one connection on its own task; `watcher` keeps shutdown waiting until it is done.
fn spawn_connection(
    stream: TcpStream,
    state: Arc<State>,
    acceptor: Option<TlsAcceptor>,
    watcher: Watcher,
) {
    tokio::spawn(async move {
        // Small request/response pairs: Nagle would only add latency.
        let _ = stream.set_nodelay(true);
        let Some(acceptor) = acceptor else {
            return serve_connection(stream, state, watcher).await;
        };
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => serve_connection(tls, state, watcher).await,
            Ok(Err(e)) => tracing::debug!(error = %e, "mock TLS handshake failed"),
            Err(_) => tracing::debug!("mock TLS handshake timed out"),
        }
    });
}

async fn serve_connection<I>(io: I, state: Arc<State>, watcher: Watcher)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| service::handle(state.clone(), req));
    let conn = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(error = %e, "mock connection ended with an error");
    }
}
