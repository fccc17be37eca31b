//! CONNECT: intercept, tunnel blind, or refuse.
//!
//! The decision, in order, so that a client learns nothing it is not entitled to:
//!
//! 1. proxy credentials (407) — before anything else, as for plain requests;
//! 2. a well-formed `host:port` target (else 400, and the connection is closed);
//! 3. a host that an upstream lists (else 403: pacer is never an open proxy);
//! 4. port 443 or the upstream's own port (else 403);
//! 5. the upstream's mode: `intercept: true` needs the `intercept:` section (else 403), and
//!    serves the requests inside through the same stack as absolute-form ones; `intercept:
//!    false` pipes bytes to the upstream's address, unshaped.
//!
//! Only then does the client hear 200. The work after it runs in a task holding a
//! [`Tracker`](super::tunnel::Tracker), so shutdown waits for it.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::body::{self, Body};
use super::frontdoor::{Admission, ConnInfo};
use super::{intercept, rescue, tunnel, Shared};
use crate::config::Config;
use crate::error::Error;
use crate::exchange::UpstreamId;
use crate::tls::Leaves;

/// The port HTTPS clients CONNECT to.
const HTTPS_PORT: u16 = 443;

/// What CONNECT may reach, built once from the config.
pub struct Connect {
    admission: Arc<Admission>,
    upstreams: Vec<Mode>,
    leaves: Option<Arc<Leaves>>,
    /// Failed interception handshakes are logged through this, one line per reason a minute.
    pub(super) handshake_log: intercept::LogThrottle,
}

/// How CONNECT to one upstream is served.
struct Mode {
    name: String,
    /// The port of `base_url`, also accepted as a CONNECT port.
    own_port: u16,
    /// `host:port` a blind tunnel dials; None when the upstream is intercepted.
    tunnel_to: Option<String>,
    connect_timeout: Duration,
}

/// Where an admitted CONNECT goes.
enum Decision {
    Intercept { upstream: UpstreamId, host: String },
    Tunnel { upstream: UpstreamId },
}

// === impl Connect ===

impl Connect {
    /// `leaves` is None when `intercept:` is not configured.
    pub fn new(config: &Config, admission: Arc<Admission>, leaves: Option<Arc<Leaves>>) -> Self {
        let upstreams = config
            .upstreams
            .iter()
            .map(|u| {
                let host = u.base_url.host_str().unwrap_or_default();
                let port = u.base_url.port_or_known_default().unwrap_or(HTTPS_PORT);
                Mode {
                    name: u.name.clone(),
                    own_port: port,
                    // A bracketed IPv6 host from the URL stays bracketed, as `connect` wants.
                    tunnel_to: (!u.intercept).then(|| format!("{host}:{port}")),
                    connect_timeout: u.connect_timeout,
                }
            })
            .collect();
        Connect {
            admission,
            upstreams,
            leaves,
            handshake_log: intercept::LogThrottle::default(),
        }
    }

    /// Whether the CA may sign `sni` inside a CONNECT to `connect_host` of `upstream`: the
    /// CONNECT host itself, or a host that upstream lists (compared without case or a final dot).
    pub(super) fn may_sign(&self, upstream: UpstreamId, connect_host: &str, sni: &str) -> bool {
        let sni = sni.strip_suffix('.').unwrap_or(sni);
        sni.eq_ignore_ascii_case(connect_host)
            || self.admission.upstreams.by_host(sni) == Some(upstream)
    }

    fn decide<B>(&self, req: &Request<B>, info: &ConnInfo) -> Result<Decision, Error> {
        if info.tunnel_upstream.is_some() {
            return Err(Error::BadRequest(
                "CONNECT inside an intercepted tunnel".into(),
            ));
        }
        self.admission.check_proxy_auth(req)?;
        let authority = req
            .uri()
            .authority()
            .filter(|a| !a.as_str().contains('@') && req.uri().path_and_query().is_none())
            .ok_or_else(|| Error::BadRequest("a CONNECT target must be host:port".into()))?;
        let port = authority
            .port_u16()
            .ok_or_else(|| Error::BadRequest("a CONNECT target must name a port".into()))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let upstream =
            self.admission
                .upstreams
                .by_host(host)
                .ok_or_else(|| Error::ForbiddenHost {
                    host: host.to_owned(),
                })?;
        let mode = &self.upstreams[upstream.index()];
        if port != HTTPS_PORT && port != mode.own_port {
            return Err(Error::ForbiddenPort {
                host: host.to_owned(),
                port,
            });
        }
        match (&mode.tunnel_to, &self.leaves) {
            (Some(_), _) => Ok(Decision::Tunnel { upstream }),
            (None, Some(_)) => Ok(Decision::Intercept {
                upstream,
                host: host.to_owned(),
            }),
            (None, None) => Err(Error::InterceptNotConfigured {
                host: host.to_owned(),
            }),
        }
    }
}

/// Answers a CONNECT and starts whatever serves the connection after it.
///
/// Boxed: the caller's future is the one hyper keeps for every connection (in a box sized for
/// it even while idle), and the tunnel dial inside this one would make it several times larger,
/// for every plain request too.
pub(super) fn handle(
    shared: Shared,
    info: ConnInfo,
    req: Request<Incoming>,
) -> Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>> {
    use futures_util::FutureExt;
    Box::pin(answer(shared, info, req).map(Ok))
}

async fn answer(shared: Shared, info: ConnInfo, mut req: Request<Incoming>) -> Response<Body> {
    let connect = shared.connect.clone();
    let decision = match connect.decide(&req, &info) {
        Ok(decision) => decision,
        Err(e) => return refuse(&e, &info),
    };
    match decision {
        Decision::Intercept { upstream, host } => {
            let leaves = connect.leaves.clone().expect("decide checked leaves");
            let client = hyper::upgrade::on(&mut req);
            let info = ConnInfo {
                peer: info.peer,
                tunnel_upstream: Some(upstream),
            };
            tokio::spawn(intercept::run(client, host, leaves, info, shared));
            established()
        }
        Decision::Tunnel { upstream } => {
            let mode = &connect.upstreams[upstream.index()];
            let addr = mode.tunnel_to.as_deref().expect("decide checked the mode");
            match tunnel::dial(&mode.name, addr, mode.connect_timeout).await {
                Ok(stream) => {
                    let client = hyper::upgrade::on(&mut req);
                    let task = tunnel::blind(client, stream, shared.tracker, mode.name.clone());
                    tokio::spawn(task);
                    established()
                }
                Err(e) => refuse(&e, &info),
            }
        }
    }
}

fn established() -> Response<Body> {
    let mut res = Response::new(body::empty());
    *res.status_mut() = StatusCode::OK;
    res
}

/// The error response for a refused CONNECT. A malformed one also ends the connection: a client
/// that sends a broken CONNECT is not one whose next bytes are worth parsing.
fn refuse(err: &Error, info: &ConnInfo) -> Response<Body> {
    let mut res = rescue::response(err);
    match err {
        Error::BadRequest(reason) => {
            tracing::warn!(peer = %info.peer, reason = %reason, "bad CONNECT; closing the connection");
            res.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        _ => tracing::debug!(peer = %info.peer, code = err.code(), "CONNECT refused"),
    }
    res
}
