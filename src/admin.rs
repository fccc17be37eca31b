//! The admin listener: metrics, health, status and live limit changes.
//!
//! | method | path | answer |
//! | --- | --- | --- |
//! | GET | `/metrics` | Prometheus text exposition |
//! | GET | `/healthz` | 200 while the process runs |
//! | GET | `/readyz` | 200 once listeners are bound and the config loaded; 503 while draining |
//! | GET | `/status` | JSON: every limit's configured and effective state |
//! | GET | `/limits/{name}` | JSON: one limit's state |
//! | PUT | `/limits/{name}` | change `rate`, `burst`, `concurrency` at once for all keys |
//! | GET | `/discovered` | JSON: what the API showed about its limits ([`crate::discover`]) |
//!
//! It binds loopback unless the config says otherwise: `PUT /limits` changes what the API
//! receives, so the listener must not be reachable by whoever can reach the proxy. Errors use
//! the proxy's JSON shape, `{"code": "pacer.admin.<what>", "message", "status"}`.
//!
//! - `limits.rs`: `/status` and `/limits/{name}`.

mod limits;
mod live;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::proxy::rescue::ErrorBody;
use crate::shape::layer::Limits;

/// Admin requests are small and local; a slow one is a stuck client.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open admin connections get to finish once the admin listener stops.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

type AdminResponse = Response<Full<Bytes>>;

/// What the admin endpoints read and change.
pub struct Admin {
    metrics: Arc<Metrics>,
    limits: Arc<Limits>,
    live: live::Live,
    draining: CancellationToken,
    discovery: Option<Arc<crate::discover::Discovery>>,
}

// === impl Admin ===

impl Admin {
    /// `draining` is cancelled when the proxy stops accepting; `/readyz` then answers 503.
    pub fn new(metrics: Arc<Metrics>, limits: Arc<Limits>, draining: CancellationToken) -> Admin {
        Admin {
            metrics,
            limits,
            live: live::Live::default(),
            draining,
            discovery: None,
        }
    }

    /// The config's limits, so `/status` can show their file values beside the current ones
    /// and `DELETE /limits/{name}` can go back to them.
    pub fn with_configured(mut self, limits: &[crate::config::Limit]) -> Admin {
        self.live = live::Live::new(limits);
        self
    }

    /// What `/discovered` shows; without it, `/discovered` says how to turn discovery on.
    pub fn with_discovery(mut self, discovery: Option<Arc<crate::discover::Discovery>>) -> Admin {
        self.discovery = discovery;
        self
    }

    fn discovered(&self) -> AdminResponse {
        match &self.discovery {
            Some(d) => json(StatusCode::OK, &d.report()),
            None => error(
                StatusCode::NOT_FOUND,
                "pacer.admin.discovery_off",
                "discovery is off; start pacer with `pacer proxy --discover-out FILE`".into(),
            ),
        }
    }

    fn draining(&self) -> bool {
        self.draining.is_cancelled()
    }

    async fn handle(&self, req: Request<Incoming>) -> AdminResponse {
        let path = req.uri().path().to_owned();
        let read = matches!(*req.method(), Method::GET | Method::HEAD);
        match path.as_str() {
            "/metrics" if read => metrics(self.metrics.render()),
            "/healthz" if read => json(StatusCode::OK, &Health { status: "ok" }),
            "/readyz" if read => self.ready(),
            "/status" if read => limits::status(&self.limits, &self.live, self.draining()),
            "/discovered" if read => self.discovered(),
            "/metrics" | "/healthz" | "/readyz" | "/status" | "/discovered" => {
                not_allowed("GET, HEAD")
            }
            _ => match path.strip_prefix("/limits/") {
                Some(name) if read => limits::get(&self.limits, &self.live, name),
                Some(name) if req.method() == Method::PUT => {
                    limits::put(&self.limits, &self.live, name, req.into_body()).await
                }
                Some(name) if req.method() == Method::DELETE => {
                    limits::restore(&self.limits, &self.live, name)
                }
                Some(_) => not_allowed("GET, HEAD, PUT, DELETE"),
                None => error(
                    StatusCode::NOT_FOUND,
                    "pacer.admin.not_found",
                    format!("no admin endpoint at {path:?}; see /status, /metrics, /limits/NAME"),
                ),
            },
        }
    }

    fn ready(&self) -> AdminResponse {
        if self.draining() {
            json(
                StatusCode::SERVICE_UNAVAILABLE,
                &Health { status: "draining" },
            )
        } else {
            json(StatusCode::OK, &Health { status: "ready" })
        }
    }
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
}

/// Serves the admin endpoints on `listener` until `stop` resolves, then gives open connections
/// a moment to finish.
pub async fn serve(
    listener: TcpListener,
    admin: Admin,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let admin = Arc::new(admin);
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let admin = admin.clone();
                    let service = hyper::service::service_fn(move |req| {
                        let admin = admin.clone();
                        async move { Ok::<_, Infallible>(admin.handle(req).await) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(HEADER_READ_TIMEOUT)
                        .serve_connection(TokioIo::new(stream), service);
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(error = %e, "admin connection ended with an error");
                        }
                    });
                }
                Err(e) => {
                    // Out of descriptors, usually: let connections close before trying again.
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
        }
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("admin connections still open at shutdown; closing them");
    }
    Ok(())
}

// === responses ===

fn metrics(text: String) -> AdminResponse {
    let mut res = Response::new(Full::new(Bytes::from(text)));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    res
}

fn json(status: StatusCode, value: &impl Serialize) -> AdminResponse {
    let mut body = serde_json::to_vec_pretty(value).expect("admin documents always serialise");
    body.push(b'\n');
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

fn error(status: StatusCode, code: &'static str, message: String) -> AdminResponse {
    let doc = ErrorBody {
        code,
        message,
        status: status.as_u16(),
    };
    json(status, &doc)
}

fn not_allowed(allow: &'static str) -> AdminResponse {
    let mut res = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "pacer.admin.method_not_allowed",
        format!("this endpoint answers {allow}"),
    );
    res.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    res
}
