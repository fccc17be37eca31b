//! The front door: admits a request and decides where it goes.
//!
//! Checks that belong to the connection rather than the API (proxy credentials, header and body
//! size) happen here, before anything waits or is sent. Then the request's target is resolved:
//! origin-form goes to `default_upstream`, absolute-form (and requests inside an intercepted
//! CONNECT) to the upstream whose `hosts` lists the host, and anything else is refused: pacer is
//! never an open proxy. Each route's stack starts with a front door of its own (see
//! `dispatch.rs`), so the route is not looked up here.

use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{header, HeaderValue, Request, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use super::client::UpstreamClient;
use super::headers::wire_size;
use crate::config::{Config, Server};
use crate::error::Error;
use crate::exchange::body::{self, Body};
use crate::exchange::{BoxError, BoxResponse, UpstreamId};
use crate::route::RouteTable;

mod body_deadline;

pub use self::body_deadline::BodyDeadline;
pub use crate::exchange::{BodyLimitExceeded, BodyReadTimeout, ConnInfo, Target};

/// The configured upstreams and the host names that reach them.
pub struct Upstreams {
    clients: Arc<[Arc<UpstreamClient>]>,
    by_host: HashMap<String, UpstreamId>,
    default: Option<UpstreamId>,
}

// === impl Upstreams ===

impl Upstreams {
    pub fn new(config: &Config) -> anyhow::Result<Upstreams> {
        let mut clients = Vec::with_capacity(config.upstreams.len());
        let mut by_host = HashMap::new();
        for (i, u) in config.upstreams.iter().enumerate() {
            let id = UpstreamId::new(i);
            clients.push(Arc::new(UpstreamClient::new(u, id)?));
            for host in &u.hosts {
                by_host.insert(host.to_ascii_lowercase(), id);
            }
        }
        Ok(Upstreams {
            clients: clients.into(),
            by_host,
            default: config.default_upstream.map(UpstreamId::new),
        })
    }

    /// The upstream that serves `host`, if any.
    pub fn by_host(&self, host: &str) -> Option<UpstreamId> {
        // Host names are case-insensitive; avoid allocating for the common lower-case case.
        match self.by_host.get(host) {
            Some(&i) => Some(i),
            None if host.bytes().any(|b| b.is_ascii_uppercase()) => {
                self.by_host.get(&host.to_ascii_lowercase()).copied()
            }
            None => None,
        }
    }

    pub fn get(&self, id: UpstreamId) -> &Arc<UpstreamClient> {
        &self.clients[id.index()]
    }

    /// Every upstream's client, indexed as in the config, for the layer that sends requests.
    pub fn clients(&self) -> Arc<[Arc<UpstreamClient>]> {
        self.clients.clone()
    }
}

/// Admission settings shared by all connections.
pub struct Admission {
    pub upstreams: Upstreams,
    pub routes: RouteTable,
    pub server: Server,
    /// The exact `Proxy-Authorization` value that admits a request, when auth is on.
    pub proxy_auth: Option<HeaderValue>,
}

// === impl Admission ===

impl Admission {
    pub fn new(config: &Config) -> anyhow::Result<Admission> {
        let proxy_auth = config.proxy_auth.as_ref().map(|a| {
            use base64::Engine as _;
            let token = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", a.username, a.password));
            let mut v = HeaderValue::from_str(&format!("Basic {token}"))
                .expect("base64 is a valid header value");
            v.set_sensitive(true);
            v
        });
        Ok(Admission {
            upstreams: Upstreams::new(config)?,
            routes: RouteTable::new(config),
            server: config.server,
            proxy_auth,
        })
    }

    /// Checks the request and resolves its target, or says why it cannot be served.
    pub fn admit(&self, req: Request<Incoming>) -> Result<Request<Body>, Error> {
        let conn = req
            .extensions()
            .get::<ConnInfo>()
            .copied()
            .ok_or(Error::Internal(
                "request arrived without connection information",
            ))?;
        // Inside an intercepted tunnel the CONNECT was authenticated; clients send
        // Proxy-Authorization to the proxy only, never inside the TLS they think is end to end.
        if conn.tunnel_upstream.is_none() {
            self.check_proxy_auth(&req)?;
        }
        self.check_sizes(&req)?;
        let upstream = self.resolve(&req, &conn)?;
        let limit = self.server.max_body_bytes;
        let body_timeout = self.server.body_timeout;
        let (mut parts, incoming) = req.into_parts();
        let client = self.upstreams.get(upstream);
        parts.extensions.insert(Target {
            upstream,
            client_addr: conn.peer,
            connect_timeout: client.connect_timeout(),
            retry_after_unit: client.retry_after_unit(),
        });
        // A request with no body (most GETs) gets the empty body: no allocation for a limit
        // that has nothing to count, nor for a deadline that has nothing to wait for.
        let body = Limited::new(incoming, limit as usize).map_err(move |e: BoxError| -> BoxError {
            if e.is::<http_body_util::LengthLimitError>() {
                Box::new(BodyLimitExceeded(limit))
            } else {
                e
            }
        });
        let body = BodyDeadline::new(body, body_timeout);
        Ok(Request::from_parts(parts, body::boxed_unless_ended(body)))
    }

    /// Checks `Proxy-Authorization` when `proxy_auth` is configured; CONNECT uses it too.
    pub fn check_proxy_auth<B>(&self, req: &Request<B>) -> Result<(), Error> {
        let Some(expected) = &self.proxy_auth else {
            return Ok(());
        };
        match req.headers().get(header::PROXY_AUTHORIZATION) {
            Some(given) if constant_time_eq(given.as_bytes(), expected.as_bytes()) => Ok(()),
            _ => Err(Error::ProxyAuthRequired),
        }
    }

    fn check_sizes<B>(&self, req: &Request<B>) -> Result<(), Error> {
        let size = wire_size(req.headers());
        let limit = self.server.max_header_bytes;
        if size > limit {
            return Err(Error::HeadersTooLarge { size, limit });
        }
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        match declared {
            Some(n) if n > self.server.max_body_bytes => Err(Error::BodyTooLarge {
                limit: self.server.max_body_bytes,
            }),
            _ => Ok(()),
        }
    }

    /// The upstream for this request.
    fn resolve<B>(&self, req: &Request<B>, conn: &ConnInfo) -> Result<UpstreamId, Error> {
        if let Some(i) = conn.tunnel_upstream {
            return Ok(i);
        }
        match req.uri().host() {
            // Absolute-form: the client uses pacer as its HTTP proxy.
            Some(host) => self
                .upstreams
                .by_host(host)
                .ok_or_else(|| Error::ForbiddenHost {
                    host: host.to_owned(),
                }),
            // Origin-form: the client points straight at pacer.
            None if req.uri().path().starts_with('/') => {
                self.upstreams.default.ok_or(Error::NoDefaultUpstream)
            }
            None => Err(Error::BadRequest(format!(
                "request target {:?} is neither origin-form nor absolute-form",
                req.uri().to_string()
            ))),
        }
    }
}

/// Compares credentials without leaking, through timing, how much of a guess was right (the
/// length of the expected value is no secret: it follows from the username's and password's).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

/// Builds the front door of a route's stack.
#[derive(Clone)]
pub struct FrontDoorLayer {
    admission: Arc<Admission>,
}

impl FrontDoorLayer {
    pub fn new(admission: Arc<Admission>) -> Self {
        FrontDoorLayer { admission }
    }
}

impl<S> tower::Layer<S> for FrontDoorLayer {
    type Service = FrontDoor<S>;

    fn layer(&self, inner: S) -> FrontDoor<S> {
        FrontDoor {
            admission: self.admission.clone(),
            inner,
        }
    }
}

/// The front door as a tower service: admits, then hands the request to the inner stack.
#[derive(Clone)]
pub struct FrontDoor<S> {
    admission: Arc<Admission>,
    inner: S,
}

// === impl FrontDoor ===

impl<S> tower::Service<Request<Incoming>> for FrontDoor<S>
where
    S: tower::Service<
        Request<Body>,
        Response = Response<Body>,
        Error = Error,
        Future = BoxResponse,
    >,
{
    type Response = Response<Body>;
    type Error = Error;
    type Future = BoxResponse;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        match self.admission.admit(req) {
            // The layer below boxed its future already; boxing it again would cost every
            // request an allocation for nothing.
            Ok(req) => self.inner.call(req),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }
}
