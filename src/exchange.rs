//! The request path's shared vocabulary: the types and names that the proxy, retry and shaping
//! layers pass to each other through a request or response and its extensions.
//!
//! A leaf: it names nothing else of the crate but [`crate::error`] (a leaf too), so that every
//! layer can depend on it while the proxy, which assembles the layers, depends on them. Defining
//! these beside the layer that happens to make them would have each layer import the others.
//!
//! - `body.rs`: the one body type of the stack, and how bodies are boxed.
//! - `half_close.rs`: a client connection's half-close state, which its requests carry.

pub mod body;
pub mod half_close;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use http::{header, Request, Response};
use tokio::time::Instant;

pub use self::body::Body;
use crate::error::Error;

/// The error type that crosses service boundaries inside hyper and tower.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The future of the layers below the front door, boxed once where it is made (`Forward`,
/// `Shape`) so that the layers above can name it and await it without boxing it again.
pub type BoxResponse =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response<Body>, Error>> + Send>>;

/// What the retry and shape layers wrap: a cheap-to-clone service whose future is a
/// [`BoxResponse`]. Named once here, so each layer's bounds say only this.
pub trait Downstream:
    tower::Service<Request<Body>, Response = Response<Body>, Error = Error, Future = BoxResponse>
    + Clone
    + Send
    + 'static
{
}

impl<S> Downstream for S where
    S: tower::Service<
            Request<Body>,
            Response = Response<Body>,
            Error = Error,
            Future = BoxResponse,
        > + Clone
        + Send
        + 'static
{
}

/// Response header: how many times pacer re-sent the request.
pub const RETRIES_HEADER: &str = "x-pacer-retries";
/// Response header: milliseconds the request spent waiting in queues and pauses.
pub const QUEUED_HEADER: &str = "x-pacer-queued-ms";
/// Response header: why pacer passed an upstream failure through instead of retrying.
pub const GAVE_UP_HEADER: &str = "x-pacer-gave-up";

/// A route of the config, by its place in `routes:`. Typed so that it cannot be mixed up with
/// the other indices a request meets (upstreams, limits); a request on no route has `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RouteId(usize);

/// An upstream of the config, by its place in `upstreams:`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UpstreamId(usize);

/// A limit of the config, by its place in `limits:`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LimitId(usize);

macro_rules! config_index {
    ($($id:ident),*) => {$(
        impl $id {
            /// The id of the entry at `index` in its config list.
            pub const fn new(index: usize) -> Self {
                $id(index)
            }

            /// The entry's place in its config list.
            pub const fn index(self) -> usize {
                self.0
            }
        }
    )*};
}

config_index!(RouteId, UpstreamId, LimitId);

/// Where an admitted request goes; the front door puts it in the request's extensions. Its
/// route is not here: each route has a stack of its own, which knows it.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    pub upstream: UpstreamId,
    pub client_addr: SocketAddr,
    /// The upstream's connect timeout, which a connect retry must leave room for.
    pub connect_timeout: Duration,
    /// What a number in the upstream's `Retry-After` counts.
    pub retry_after_unit: RetryAfterUnit,
}

impl Target {
    /// The client's address for `client_ip` limit keys. A request without a target (never on
    /// the proxy path) counts as one unknown client rather than escaping the limit.
    pub fn client_ip(extensions: &http::Extensions) -> IpAddr {
        Target::ip_of(extensions.get::<Target>())
    }

    /// [`Target::client_ip`] for a target held outside a request.
    pub fn ip_of(target: Option<&Target>) -> IpAddr {
        target.map_or(IpAddr::from([0, 0, 0, 0]), |t| t.client_addr.ip())
    }
}

/// What a number in an upstream's `Retry-After` counts (seconds, as RFC 9110 says, unless the
/// API is known to send milliseconds). A config value (`retry_after_unit:`) that requests carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RetryAfterUnit {
    #[default]
    Seconds,
    Milliseconds,
}

/// What the connection knows about a request: who sent it, and for a request inside an
/// intercepted CONNECT, which upstream the tunnel was opened to.
#[derive(Clone, Copy, Debug)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub tunnel_upstream: Option<UpstreamId>,
}

/// The request body grew past `server.max_body_bytes` while streaming.
#[derive(Debug, thiserror::Error)]
#[error("request body larger than {0} bytes")]
pub struct BodyLimitExceeded(pub u64);

/// The request body did not arrive within `server.body_timeout`.
#[derive(Debug, thiserror::Error)]
#[error("request body not received within {}s", .0.as_secs_f64())]
pub struct BodyReadTimeout(pub Duration);

/// A limit key: a hash of what the request is counted by. Raw tokens and header values are never
/// kept, so a key in memory, a log or Redis reveals nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LimitKey(pub u64);

impl LimitKey {
    pub const GLOBAL: LimitKey = LimitKey(0);
}

/// When the client's request arrived, on re-sent requests: their queue deadlines count from
/// here, not from the retry. A first attempt carries none; the shaping layer's own arrival time
/// is the same instant to within a call.
#[derive(Clone, Copy, Debug)]
pub struct RequestStart(pub Instant);

/// What a request went through in the shaping layer, put on the response for the layers above:
/// the limit keys it passed (to pause them when the upstream answers 429) and how long it queued.
#[derive(Clone, Debug, Default)]
pub struct Passed {
    pub keys: Vec<(LimitId, LimitKey)>,
    pub waited: Duration,
}

/// Marks a request as a retry, so it queues ahead of newer requests.
#[derive(Clone, Copy, Debug)]
pub struct IsRetry;

/// Why an attempt is a candidate for another (the `reason` of `pacer_retries_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetryReason {
    /// The upstream answered 429.
    Throttled,
    /// The upstream answered 502, 503 or 504 to an idempotent request, and `on_5xx` allows it.
    Upstream5xx,
    /// The upstream could not be reached before any byte of the request left.
    Connect,
}

impl RetryReason {
    /// Every reason, for pre-registering metric series.
    pub const ALL: [RetryReason; 3] = [
        RetryReason::Throttled,
        RetryReason::Upstream5xx,
        RetryReason::Connect,
    ];

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RetryReason::Throttled => "throttled",
            RetryReason::Upstream5xx => "upstream_5xx",
            RetryReason::Connect => "connect",
        }
    }
}

impl std::fmt::Display for RetryReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a request asks to switch protocols (WebSocket and friends). An upgrade to `h2c`
/// (cleartext HTTP/2) is not one pacer passes on: its streams would reach the API unshaped, so
/// such a request is forwarded as plain HTTP/1.1, without its Upgrade header.
pub fn is_upgrade(headers: &http::HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && lists(headers, header::CONNECTION, "upgrade")
        && !lists(headers, header::UPGRADE, "h2c")
}

/// Whether a comma-separated header lists `token` (case-insensitive), in any of its fields.
fn lists(headers: &http::HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Helpers for the layers' unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::task::{Context, Poll};

    use super::*;

    /// A layer below that is never polled.
    #[derive(Clone)]
    pub(crate) struct Never;

    impl tower::Service<Request<Body>> for Never {
        type Response = Response<Body>;
        type Error = Error;
        type Future = BoxResponse;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Request<Body>) -> BoxResponse {
            Box::pin(std::future::pending())
        }
    }
}
