//! One keep-alive connection owned by one task: a closed-model user, or an open-model lane.
//!
//! Load requests do not go through hyper-util's pooled client (OAuth does): with a pool, every
//! request pays a checkout, a hashed pool key, a URI rewrite and a hand-over to a separate
//! connection task, which on two cores cost a third of the throughput a load generator owes
//! the benchmark. Here the task that sends also drives its connection (hyper's
//! `client::conn::http1`), so a request is one write, one read and no task switch, the way
//! wrk and oha work. Connections still come from the same proxy-aware rustls connector.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http::header::HOST;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::client::legacy::connect::Connection as _;
use tokio::time::Instant;

use super::cause::explain;
use super::client::Connector;
use super::record::ErrorKind;
use super::scenario::RequestSpec;

type Driver = Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>>;

/// A request ready to go in either form.
pub(super) struct Prepared {
    method: Method,
    /// `/path?query`, for the target itself or inside a CONNECT tunnel.
    origin: Uri,
    /// `http://host/path`, for a forward proxy.
    absolute: Uri,
    /// The scenario's headers and `Host`.
    headers: HeaderMap,
    body: Bytes,
}

/// An open connection and the future that drives it.
pub(super) struct Link {
    sender: SendRequest<Full<Bytes>>,
    /// None once the connection has ended.
    driver: Option<Driver>,
    /// Whether the connection goes to a forward proxy (so requests are absolute-form).
    proxied: bool,
}

/// Why a send failed.
enum SendError {
    /// The request never left: the connection had closed. Safe to send again elsewhere.
    NotSent,
    Failed(Failed),
}

/// A request that got no response: the kind it counts as, and the cause in words.
pub(super) struct Failed {
    pub kind: ErrorKind,
    pub cause: String,
}

impl Failed {
    fn new(kind: ErrorKind, err: &(dyn std::error::Error + 'static)) -> Failed {
        Failed {
            kind,
            cause: explain(err),
        }
    }
}

// === impl Prepared ===

impl Prepared {
    pub fn new(spec: &RequestSpec) -> Prepared {
        let mut headers = spec.headers.clone();
        if let Some(authority) = spec.uri.authority() {
            let value = HeaderValue::from_str(authority.as_str())
                .expect("an authority is a valid header value");
            headers.entry(HOST).or_insert(value);
        }
        let path = spec.uri.path_and_query().map_or("/", |p| p.as_str());
        Prepared {
            method: spec.method.clone(),
            origin: path.parse().expect("a path of a valid URI is a valid URI"),
            absolute: spec.uri.clone(),
            headers,
            body: spec.body.clone(),
        }
    }

    fn request(&self, proxied: bool, auth: Option<&HeaderValue>) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(self.body.clone()));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = match proxied {
            true => self.absolute.clone(),
            false => self.origin.clone(),
        };
        *req.headers_mut() = self.headers.clone();
        if let Some(auth) = auth {
            req.headers_mut()
                .insert(http::header::AUTHORIZATION, auth.clone());
        }
        req
    }
}

// === impl Link ===

impl Link {
    async fn connect(connector: &Connector, target: &Uri) -> Result<Link, Failed> {
        let io = tower::Service::call(&mut connector.clone(), target.clone())
            .await
            .map_err(|e| Failed::new(ErrorKind::Connect, e.as_ref()))?;
        let proxied = io.connected().is_proxied();
        let (sender, conn) = http1::handshake(io)
            .await
            .map_err(|e| Failed::new(ErrorKind::Connect, &e))?;
        Ok(Link {
            sender,
            driver: Some(Box::pin(conn)),
            proxied,
        })
    }

    fn is_open(&self) -> bool {
        self.driver.is_some() && !self.sender.is_closed()
    }

    /// Waits for `fut` while keeping the connection serviced, so a close while idle is seen.
    pub async fn idle<F: Future>(&mut self, fut: F) -> F::Output {
        drive(&mut self.driver, fut).await
    }

    async fn send(&mut self, req: Request<Full<Bytes>>) -> Result<StatusCode, SendError> {
        if drive(&mut self.driver, self.sender.ready()).await.is_err() {
            return Err(SendError::NotSent);
        }
        let response = match drive(&mut self.driver, self.sender.try_send_request(req)).await {
            Ok(response) => response,
            Err(e) if e.message().is_some() => return Err(SendError::NotSent),
            Err(e) => return Err(SendError::Failed(Failed::new(ErrorKind::Io, e.error()))),
        };
        let status = response.status();
        let mut body = response.into_body();
        while let Some(frame) = drive(&mut self.driver, body.frame()).await {
            frame.map_err(|e| SendError::Failed(Failed::new(ErrorKind::Io, &e)))?;
        }
        Ok(status)
    }
}

/// Polls the connection `driver` alongside `fut` until `fut` is done. A driver that finishes
/// (the connection closed) is dropped, which fails whatever was pending on it.
async fn drive<F: Future>(driver: &mut Option<Driver>, fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    poll_fn(|cx| {
        if let Some(d) = driver {
            if d.as_mut().poll(cx).is_ready() {
                *driver = None;
            }
        }
        fut.as_mut().poll(cx)
    })
    .await
}

/// Sends one request on `link` (connecting first when there is none), reads the whole
/// response, and says what became of it. A request that could not leave because the
/// connection had just closed goes once more on a fresh one, as a pooled client would; any
/// other failure drops the link, so the next request starts on a new connection.
pub(super) async fn exchange(
    link: &mut Option<Link>,
    connector: &Connector,
    prepared: &Prepared,
    auth: Option<&HeaderValue>,
    timeout: Duration,
) -> Result<u16, Failed> {
    let deadline = Instant::now() + timeout;
    let attempt = async {
        for _ in 0..2 {
            if !link.as_ref().is_some_and(Link::is_open) {
                *link = Some(Link::connect(connector, &prepared.absolute).await?);
            }
            let open = link.as_mut().expect("connected above");
            match open.send(prepared.request(open.proxied, auth)).await {
                Ok(status) => return Ok(status),
                Err(SendError::NotSent) => *link = None,
                Err(SendError::Failed(failed)) => {
                    *link = None;
                    return Err(failed);
                }
            }
        }
        Err(Failed {
            kind: ErrorKind::Io,
            cause: "the connection closed before the request could be sent, twice".into(),
        })
    };
    match tokio::time::timeout_at(deadline, attempt).await {
        Ok(result) => result.map(|status| status.as_u16()),
        Err(_) => {
            // The exchange was cut mid-way; the connection's state is unknown.
            *link = None;
            Err(Failed {
                kind: ErrorKind::Timeout,
                cause: format!(
                    "no complete response within the scenario's timeout ({})",
                    super::cause::duration_words(timeout)
                ),
            })
        }
    }
}
