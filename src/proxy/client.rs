//! The upstream client: one per upstream, over rustls, with its connections in a [`Pool`].
//!
//! Each upstream has its own trust roots, timeouts and pool. The client rewrites the request for
//! the upstream (an origin-form target, Host, HTTP/1.1), removes hop-by-hop headers, and
//! classifies failures into typed errors: a connect failure (nothing sent, always safe to
//! retry) is told apart from a broken exchange (may have reached the API) and a timeout.

use std::sync::Arc;
use std::time::Duration;

use http::uri::{Authority, PathAndQuery, Scheme};
use http::{header, HeaderValue, Request, Response, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::time::Instant;

use super::pool::{Pool, PooledBody, SendError};

use super::body::{self, Body};
use super::half_close::ClientConn;
use super::headers::{ambiguous_framing, strip_hop_by_hop};
use crate::config;
use crate::error::Error;
use crate::exchange::{BodyLimitExceeded, UpstreamId};
use crate::metrics::Metrics;

pub use crate::exchange::is_upgrade;

/// A configured upstream, ready to send to.
pub struct UpstreamClient {
    /// Its place in the config's upstreams; metrics are indexed by it.
    id: UpstreamId,
    name: Arc<str>,
    host: HeaderValue,
    request_timeout: Duration,
    body_idle_timeout: Duration,
    connect_timeout: Duration,
    retry_after_unit: config::RetryAfterUnit,
    pool: Pool,
}

// === impl UpstreamClient ===

impl UpstreamClient {
    pub fn new(cfg: &config::Upstream, id: UpstreamId) -> anyhow::Result<UpstreamClient> {
        let uri: Uri = cfg.base_url.as_str().parse()?;
        let scheme = uri.scheme().cloned().unwrap_or(Scheme::HTTPS);
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("upstream {} has no host", cfg.name))?;
        let host = authority_without_default_port(&scheme, &authority);
        let origin = Uri::builder()
            .scheme(scheme.clone())
            .authority(authority.clone())
            .path_and_query("/")
            .build()?;
        let tls = super::tls_client::client_config(cfg.ca_file.as_deref())?;

        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(cfg.connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(UpstreamClient {
            id,
            name: cfg.name.as_str().into(),
            host: HeaderValue::from_str(&host)?,
            request_timeout: cfg.request_timeout,
            body_idle_timeout: cfg.body_idle_timeout,
            connect_timeout: cfg.connect_timeout,
            retry_after_unit: cfg.retry_after_unit,
            pool: Pool::new(https, origin, cfg.max_idle),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// What a number in this upstream's `Retry-After` counts.
    pub fn retry_after_unit(&self) -> config::RetryAfterUnit {
        self.retry_after_unit
    }

    pub fn id(&self) -> UpstreamId {
        self.id
    }

    /// Sends one request upstream and returns its response head with a streaming body. The
    /// whole response must end within `timeouts.request`: a streamed body that would run
    /// past it, or pause for `timeouts.body_idle`, is cut (and counted in `metrics`).
    pub async fn send(
        &self,
        mut req: Request<Body>,
        metrics: &Arc<Metrics>,
    ) -> Result<Response<Body>, Error> {
        let upgrade = super::upgrade::Pending::take(&mut req);
        // Taken, not cloned: nothing below needs it but a streamed answer's deadline.
        let conn = req.extensions_mut().remove::<ClientConn>();
        self.prepare(&mut req);
        let deadline = Instant::now() + self.request_timeout;
        // One timer for the whole exchange (head and, when small, body): a timer costs a wheel
        // insertion and removal on every request. Only a streamed body needs a second one.
        let exchange = self.exchange(req, upgrade, conn, deadline, metrics);
        match tokio::time::timeout_at(deadline, exchange).await {
            Ok(result) => result,
            Err(_) => Err(Error::UpstreamTimeout {
                upstream: self.name.to_string(),
                timeout: self.request_timeout,
            }),
        }
    }

    async fn exchange(
        &self,
        req: Request<Body>,
        upgrade: Option<super::upgrade::Pending>,
        conn: Option<ClientConn>,
        deadline: Instant,
        metrics: &Arc<Metrics>,
    ) -> Result<Response<Body>, Error> {
        let mut res = self.pool.send(req).await.map_err(|e| self.classify(e))?;
        if let Some(upgrade) = upgrade {
            upgrade.on_response(&mut res);
        }
        let (mut parts, incoming) = res.into_parts();
        if ambiguous_framing(&parts.headers) {
            return Err(Error::UpstreamInvalid {
                upstream: self.name.to_string(),
                reason: "the answer has both Content-Length and Transfer-Encoding".into(),
            });
        }
        let upgrading = parts.status == http::StatusCode::SWITCHING_PROTOCOLS;
        strip_hop_by_hop(&mut parts.headers, upgrading);
        let body = match small_body_len(&parts.headers) {
            Some(_) if !upgrading => self.read_small(incoming).await?,
            // A body that has ended already (204, 304, HEAD) boxes to nothing.
            _ if upgrading || http_body::Body::is_end_stream(&incoming) => {
                body::boxed_unless_ended(incoming)
            }
            _ => {
                let counter = body::CutCounter {
                    metrics: metrics.clone(),
                    upstream: self.id,
                };
                let idle = self.body_idle_timeout;
                body::boxed(body::Timed::new(incoming, deadline, idle, counter, conn))
            }
        };
        Ok(Response::from_parts(parts, body))
    }

    /// Reads a small response body whole, so the client gets head and body in one write
    /// instead of a head write now and a body write a moment later (as nginx's proxy buffering
    /// does). API answers are mostly small JSON documents, so this halves the writes and wake-ups
    /// on the client side for most requests.
    async fn read_small(&self, mut incoming: PooledBody) -> Result<Body, Error> {
        use http_body::Body as _;
        use http_body_util::BodyExt;
        // A small answer mostly comes as one data frame that ends the body: that frame is
        // handed on as it is, with no buffer to gather it in. A length-delimited HTTP/1.1 body
        // has no trailers, so data frames are all there is to keep.
        let mut gathered: Option<bytes::BytesMut> = None;
        let mut last = bytes::Bytes::new();
        while let Some(frame) = incoming.frame().await {
            let frame = frame.map_err(|e| Error::UpstreamUnreachable {
                upstream: self.name.to_string(),
                cause: Box::new(BodyBrokeOff(e)),
                sent: true,
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if !last.is_empty() {
                gathered
                    .get_or_insert_with(bytes::BytesMut::new)
                    .extend_from_slice(&last);
            }
            last = data;
            if incoming.is_end_stream() {
                break;
            }
        }
        Ok(match gathered {
            None => body::full(last),
            Some(mut all) => {
                all.extend_from_slice(&last);
                body::full(all.freeze())
            }
        })
    }

    /// Points the request at this upstream.
    fn prepare(&self, req: &mut Request<Body>) {
        let path = req
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        // Origin-form (`GET /path?query`): the connection already goes to the upstream, and
        // hyper writes the request target exactly as the URI says.
        *req.uri_mut() = Uri::from(path);
        // Requests reach the upstream as HTTP/1.1 whatever the client spoke.
        *req.version_mut() = http::Version::HTTP_11;
        let upgrading = is_upgrade(req.headers());
        strip_hop_by_hop(req.headers_mut(), upgrading);
        // Framing is per connection: hyper frames the body for the upstream (Content-Length, or
        // chunked when the length is unknown), so the client's own Transfer-Encoding, whatever
        // it said (`identity, chunked`, twice), is never passed on.
        req.headers_mut().remove(header::TRANSFER_ENCODING);
        req.headers_mut().insert(header::HOST, self.host.clone());
    }

    fn classify(&self, err: SendError) -> Error {
        let upstream = self.name.to_string();
        let (cause, sent) = match err {
            SendError::Connect(e) => (e, false),
            SendError::Exchange(e) => {
                if let Some(limit) = find_length_limit(&e) {
                    return limit;
                }
                (e.into(), true)
            }
        };
        Error::UpstreamUnreachable {
            upstream,
            cause,
            sent,
        }
    }
}

/// A small response body that failed while pacer read it whole.
#[derive(Debug, thiserror::Error)]
#[error("the response body broke off: {0}")]
struct BodyBrokeOff(crate::BoxError);

/// Bodies up to this size with a declared length are read whole before answering.
const SMALL_BODY: u64 = 64 * 1024;

/// The declared length of a response body, when it is small enough to read whole.
fn small_body_len(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&n| n <= SMALL_BODY)
}

fn authority_without_default_port(scheme: &Scheme, authority: &Authority) -> String {
    let default = if *scheme == Scheme::HTTPS { 443 } else { 80 };
    match authority.port_u16() {
        Some(p) if p == default => authority.host().to_owned(),
        _ => authority.as_str().to_owned(),
    }
}

/// A request body over `server.max_body_bytes` surfaces as a client error wrapping
/// `LengthLimitError`; it is the client's fault (413), not the upstream's.
fn find_length_limit(err: &(dyn std::error::Error + 'static)) -> Option<Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(limit) = e.downcast_ref::<BodyLimitExceeded>() {
            return Some(Error::BodyTooLarge { limit: limit.0 });
        }
        cur = e.source();
    }
    None
}
