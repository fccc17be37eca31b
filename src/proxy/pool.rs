//! Upstream connections: HTTP/1.1 client connections kept per thread for reuse.
//!
//! hyper-util's pooled client does this generically (any protocol, any host, a shared pool
//! behind a lock, keys hashed per request), which showed up as a fifth of pacer's per-request
//! instructions. An [`UpstreamClient`](super::client::UpstreamClient) talks to one origin, so
//! its pool is a plain stack of idle connections per thread: no key, no lock, and a request
//! reuses a connection whose task runs on its own thread (see [`crate::proxy::workers`]).
//!
//! A connection goes back on the stack once its response body has been read to the end (a
//! body dropped half-way closes it, since the rest would still be on the wire). The most
//! recently used connection goes out first; connections idle longer than [`IDLE`] are dropped
//! when met, and past `upstreams.*.max_idle` per thread (128 by default) the least recently used
//! is closed, so a burst of clients does not leave thousands of idle upstream connections behind
//! (each holds a socket and its buffers, on both ends). An idle connection the upstream closed in
//! the meantime hands the request back unsent, and the request goes on to the next connection or
//! a new one, as it would with hyper-util's `retry_canceled_requests`. One closed just as the
//! request was written to it (the end of the stream or a reset, and no answer) sends an
//! idempotent request without a body on as well ([`replayable_copy`]); any other request gets
//! the error.
//!
//! HTTP/2 upstreams would pool differently (one shared connection, many streams); that is a
//! second implementation beside this one, chosen by the connection's negotiated protocol.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response, Uri};
use http_body::{Body as _, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use thread_local::ThreadLocal;
use tokio::time::Instant;
use tower::ServiceExt as _;

use super::body::Body;
use crate::BoxError;

/// How long an idle connection is kept: below the usual 60-120 s idle timeouts of API gateways,
/// so pacer rarely reuses a connection the far end is just closing.
pub const IDLE: Duration = Duration::from_secs(50);

/// Why a send failed: before anything reached the upstream, or during the exchange.
#[derive(Debug)]
pub enum SendError {
    /// No connection could be made (refused, unresolvable, TLS failure, connect timeout).
    Connect(BoxError),
    /// The connection broke or the request could not be written or answered.
    Exchange(hyper::Error),
}

/// One upstream origin's connections, per thread.
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    connector: HttpsConnector<HttpConnector>,
    /// Scheme and authority, what the connector dials.
    origin: Uri,
    /// Most recently used at the back.
    idle: ThreadLocal<RefCell<VecDeque<Idle>>>,
    /// The most idle connections kept per thread (`upstreams.*.max_idle`).
    max_idle: usize,
}

struct Idle {
    sender: SendRequest<Body>,
    since: Instant,
}

// === impl Pool ===

impl Pool {
    pub fn new(connector: HttpsConnector<HttpConnector>, origin: Uri, max_idle: usize) -> Pool {
        Pool {
            inner: Arc::new(Inner {
                connector,
                origin,
                idle: ThreadLocal::new(),
                max_idle,
            }),
        }
    }

    /// Sends `req` on an idle connection or a new one. The response's body hands the connection
    /// back when read to the end. It comes unboxed: a small answer is read whole right away, and
    /// only a streamed one needs the box.
    pub async fn send(&self, mut req: Request<Body>) -> Result<Response<PooledBody>, SendError> {
        while let Some(mut sender) = self.inner.checkout() {
            if sender.ready().await.is_err() {
                continue;
            }
            let again = replayable_copy(&req);
            match sender.try_send_request(req).await {
                Ok(res) => return Ok(self.inner.clone().track(res, sender)),
                Err(mut e) => match (e.take_message(), again) {
                    // Not written: the connection closed while idle. Try the next one.
                    (Some(unsent), _) => req = unsent,
                    (None, Some(copy)) if closed_under(e.error()) => req = copy,
                    (None, _) => return Err(SendError::Exchange(e.into_error())),
                },
            }
        }
        // Boxed: connecting (TCP, then TLS) is the rare path, and its state machine would
        // otherwise make every send's future, which is moved and copied per request, as large.
        let mut sender = Box::pin(self.inner.connect()).await?;
        match sender.send_request(req).await {
            Ok(res) => Ok(self.inner.clone().track(res, sender)),
            Err(e) => Err(SendError::Exchange(e)),
        }
    }
}

/// A copy of `req` to send again if its reused connection turns out to have been closed under it,
/// when sending it twice is harmless: an idempotent method (RFC 9110 section 9.2.2) and no body
/// (one that has gone is gone).
///
/// The upstream may close an idle connection just as pacer writes to it, the close still on its
/// way: hyper then writes the request and reads the end of the stream. Whether the upstream read
/// the request cannot be known, so only a request that may be repeated goes again. Only requests
/// on reused connections pay for the copy, and those are mostly such GETs.
fn replayable_copy(req: &Request<Body>) -> Option<Request<Body>> {
    use http_body::Body as _;
    if !req.method().is_idempotent() || !req.body().is_end_stream() {
        return None;
    }
    let mut copy = Request::new(super::body::empty());
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    Some(copy)
}

/// Whether an exchange failed because the connection closed before any answer: the end of the
/// stream, or a reset, with no response.
fn closed_under(err: &hyper::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    if err.is_incomplete_message() {
        return true;
    }
    let io = std::error::Error::source(err).and_then(|e| e.downcast_ref::<std::io::Error>());
    io.is_some_and(|e| matches!(e.kind(), BrokenPipe | ConnectionReset | ConnectionAborted))
}

// === impl Inner ===

impl Inner {
    /// The most recently used idle connection that is still open and fresh.
    fn checkout(&self) -> Option<SendRequest<Body>> {
        let mut idle = self.idle.get_or_default().borrow_mut();
        while let Some(conn) = idle.pop_back() {
            if !conn.sender.is_closed() && conn.since.elapsed() < IDLE {
                return Some(conn.sender);
            }
        }
        None
    }

    fn checkin(&self, sender: SendRequest<Body>) {
        if sender.is_closed() || self.max_idle == 0 {
            return;
        }
        let mut idle = self.idle.get_or_default().borrow_mut();
        let now = Instant::now();
        // The oldest sit at the bottom; sweep them when the bottom one has expired, so a pool
        // that shrank after a burst does not keep dead connections for ever.
        if idle.front().is_some_and(|c| now - c.since >= IDLE) {
            idle.retain(|c| now - c.since < IDLE && !c.sender.is_closed());
        }
        // Past the cap the least recently used goes: dropping its sender closes it.
        if idle.len() >= self.max_idle {
            idle.pop_front();
        }
        idle.push_back(Idle { sender, since: now });
    }

    async fn connect(&self) -> Result<SendRequest<Body>, SendError> {
        // Through `oneshot`, which waits for `poll_ready` before calling, as tower's contract
        // asks (hyper-rustls's connector is always ready today, a wrapped one may not be).
        let io = self
            .connector
            .clone()
            .oneshot(self.origin.clone())
            .await
            .map_err(SendError::Connect)?;
        let (sender, conn) = http1::Builder::new()
            .handshake(io)
            .await
            .map_err(|e| SendError::Connect(e.into()))?;
        // The connection's task; with upgrades, so a 101 hands the socket to the upgrade pipe.
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }

    /// Wraps the response body so the connection returns to the pool when it is read to the
    /// end. A 101 answer's connection belongs to the upgrade and never returns, nor does one whose
    /// answer was framed ambiguously.
    fn track(
        self: Arc<Self>,
        res: Response<Incoming>,
        sender: SendRequest<Body>,
    ) -> Response<PooledBody> {
        let upgrading = res.status() == http::StatusCode::SWITCHING_PROTOCOLS;
        let (parts, incoming) = res.into_parts();
        // After an answer whose end is a guess, the next answer's start would be one too.
        let reusable = !upgrading && !super::headers::ambiguous_framing(&parts.headers);
        let mut checkin = reusable.then_some(Checkin { pool: self, sender });
        if incoming.is_end_stream() {
            if let Some(c) = checkin.take() {
                c.give_back();
            }
        }
        Response::from_parts(parts, PooledBody { incoming, checkin })
    }
}

/// A connection on its way back to the pool, once its response has been read.
struct Checkin {
    pool: Arc<Inner>,
    sender: SendRequest<Body>,
}

impl Checkin {
    fn give_back(self) {
        self.pool.checkin(self.sender);
    }
}

pin_project_lite::pin_project! {
    /// A response body that gives its connection back once it has been read to the end.
    pub struct PooledBody {
        #[pin]
        incoming: Incoming,
        checkin: Option<Checkin>,
    }
}

impl http_body::Body for PooledBody {
    type Data = bytes::Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<bytes::Bytes>, BoxError>>> {
        let this = self.project();
        let mut incoming = this.incoming;
        let polled = std::task::ready!(incoming.as_mut().poll_frame(cx));
        // hyper stops polling a body that says it has ended, so the last frame checks too.
        let ended = match &polled {
            None => true,
            Some(Ok(_)) => incoming.is_end_stream(),
            // A broken body leaves the connection in an unknown state: never reuse it.
            Some(Err(_)) => {
                *this.checkin = None;
                false
            }
        };
        if ended {
            if let Some(c) = this.checkin.take() {
                c.give_back();
            }
        }
        Poll::Ready(polled.map(|r| r.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pool for an upstream that accepts connections and never answers.
    async fn pool(max_idle: usize) -> (Pool, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                open.push(stream);
            }
        });
        let tls = super::super::tls_client::client_config(None).unwrap();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(HttpConnector::new());
        let origin = format!("http://{addr}/").parse().unwrap();
        (Pool::new(https, origin, max_idle), held)
    }

    #[tokio::test]
    async fn idle_connections_past_max_idle_are_closed() {
        let (pool, _held) = pool(2).await;
        let mut senders = Vec::new();
        for _ in 0..3 {
            senders.push(pool.inner.connect().await.expect("connects"));
        }
        for sender in senders {
            pool.inner.checkin(sender);
        }
        let idle = pool.inner.idle.get_or_default().borrow().len();
        assert_eq!(idle, 2, "kept more idle connections than max_idle");
        assert!(pool.inner.checkout().is_some());
        assert!(pool.inner.checkout().is_some());
        assert!(pool.inner.checkout().is_none());
    }

    #[tokio::test]
    async fn max_idle_zero_keeps_nothing() {
        let (pool, _held) = pool(0).await;
        let sender = pool.inner.connect().await.expect("connects");
        pool.inner.checkin(sender);
        assert!(pool.inner.checkout().is_none());
    }
}
