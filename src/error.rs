//! The one error type of the request path.
//!
//! Every failure inside the stack is a variant here. Two properties live on the error itself, so
//! that no layer has to guess: the HTTP status and machine-readable code the client sees (turned
//! into a response only by [`crate::proxy::rescue`]), and whether the request may be sent
//! upstream again ([`Error::retryable`]).

use std::time::Duration;

use http::StatusCode;

/// A failure on the request path, typed so the response and the retry decision follow from it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request parsed as HTTP but cannot be proxied (bad authority, unsupported form, ...).
    #[error("malformed request: {0}")]
    BadRequest(String),

    /// The client's body broke off while pacer read it to keep for replay (a reset connection,
    /// broken chunked framing). The cause is kept as an error, for the response to say.
    #[error("malformed request: reading the request body failed")]
    BodyRead {
        #[source]
        cause: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The header section is larger than `server.max_header_bytes`.
    #[error("the request's header section is {size} bytes, more than the {limit} bytes allowed")]
    HeadersTooLarge { size: usize, limit: usize },

    /// The body is larger than `server.max_body_bytes`.
    #[error("the request body is larger than the {limit} bytes allowed")]
    BodyTooLarge { limit: u64 },

    /// The client did not send its whole body within `server.body_timeout`.
    #[error("the request body did not arrive within {}s", timeout.as_secs_f64())]
    BodyTimeout { timeout: Duration },

    /// `proxy_auth` is configured and the request did not carry valid credentials.
    #[error("proxy authentication required")]
    ProxyAuthRequired,

    /// The request addressed a host that no upstream lists: pacer is not an open proxy.
    #[error(
        "host {host:?} is not one of the configured upstream hosts; pacer forwards only to those"
    )]
    ForbiddenHost { host: String },

    /// A CONNECT named an upstream's host but a port other than 443 or the upstream's own.
    #[error("CONNECT to {host}:{port} is refused: pacer tunnels to port 443 or the upstream's own port only")]
    ForbiddenPort { host: String, port: u16 },

    /// A CONNECT to a host whose upstream is intercepted, but no `intercept:` section says which
    /// CA to sign with.
    #[error("CONNECT to {host} needs TLS interception, which is not configured; add an intercept section (ca_cert, ca_key) or set intercept: false on the upstream")]
    InterceptNotConfigured { host: String },

    /// An origin-form request arrived but there is no default upstream to send it to.
    #[error("no default_upstream is configured, so origin-form requests have nowhere to go; send absolute-form requests or set default_upstream")]
    NoDefaultUpstream,

    /// The upstream could not be reached, or the connection broke before a response arrived.
    /// `sent` tells whether any byte of the request may have reached the upstream. The cause is
    /// kept as an error, for the response to say (`proxy::rescue::message`).
    #[error("upstream {upstream} is unreachable")]
    UpstreamUnreachable {
        upstream: String,
        #[source]
        cause: Box<dyn std::error::Error + Send + Sync>,
        sent: bool,
    },

    /// The upstream's answer cannot be passed on safely: its framing is ambiguous (both
    /// Content-Length and Transfer-Encoding), so where its body ends is a guess.
    #[error("upstream {upstream} sent an invalid answer: {reason}")]
    UpstreamInvalid { upstream: String, reason: String },

    /// The upstream accepted the request but did not answer in time.
    #[error("upstream {upstream} did not answer within {}s", timeout.as_secs_f64())]
    UpstreamTimeout { upstream: String, timeout: Duration },

    /// The limit's queue is at `max_depth`.
    #[error("the queue of limit {limit} is full")]
    QueueFull {
        limit: String,
        retry_after: Option<Duration>,
    },

    /// The request could not start within the limit's `max_wait`.
    #[error("the request could not start within the max_wait of limit {limit}")]
    QueueTimeout {
        limit: String,
        retry_after: Option<Duration>,
    },

    /// A limit in `reject` mode has no token right now.
    #[error("limit {limit} is exhausted")]
    RateLimited {
        limit: String,
        retry_after: Option<Duration>,
    },

    /// The limit tracks as many keys as it may; a new key cannot be admitted.
    #[error("limit {limit} tracks its maximum number of keys; new keys are refused until idle ones expire")]
    KeysExhausted { limit: String },

    /// A shared limit's Redis cannot be reached and `shared.on_unavailable` is `reject`.
    #[error("limit {limit} is shared through Redis, which cannot be reached now")]
    SharedUnavailable { limit: String },

    /// The process is draining for shutdown: the drain deadline passed while the request was
    /// still queued in a limit.
    #[error("pacer is shutting down")]
    ShuttingDown,

    /// A bug in pacer's own wiring, such as a layer missing what the layer above it always
    /// provides: pacer's fault, not the client's.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl Error {
    /// The status the client sees for this error.
    pub fn status(&self) -> StatusCode {
        use Error::*;
        match self {
            BadRequest(_) | BodyRead { .. } => StatusCode::BAD_REQUEST,
            HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ProxyAuthRequired => StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            ForbiddenHost { .. }
            | ForbiddenPort { .. }
            | InterceptNotConfigured { .. }
            | NoDefaultUpstream => StatusCode::FORBIDDEN,
            UpstreamUnreachable { .. } | UpstreamInvalid { .. } => StatusCode::BAD_GATEWAY,
            UpstreamTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            QueueFull { .. } | QueueTimeout { .. } | RateLimited { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            KeysExhausted { .. } | SharedUnavailable { .. } | ShuttingDown => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable, machine-readable code in the JSON body (`pacer.<what>`).
    pub fn code(&self) -> &'static str {
        use Error::*;
        match self {
            BadRequest(_) | BodyRead { .. } => "pacer.request.malformed",
            HeadersTooLarge { .. } => "pacer.request.headers_too_large",
            BodyTooLarge { .. } => "pacer.request.body_too_large",
            BodyTimeout { .. } => "pacer.request.body_timeout",
            ProxyAuthRequired => "pacer.proxy.auth_required",
            ForbiddenHost { .. } => "pacer.host.forbidden",
            ForbiddenPort { .. } => "pacer.connect.port_forbidden",
            InterceptNotConfigured { .. } => "pacer.connect.intercept_unconfigured",
            NoDefaultUpstream => "pacer.upstream.no_default",
            UpstreamUnreachable { .. } => "pacer.upstream.unreachable",
            UpstreamInvalid { .. } => "pacer.upstream.invalid",
            UpstreamTimeout { .. } => "pacer.upstream.timeout",
            QueueFull { .. } => "pacer.queue.full",
            QueueTimeout { .. } => "pacer.queue.timeout",
            RateLimited { .. } => "pacer.rate.limited",
            KeysExhausted { .. } => "pacer.keys.exhausted",
            SharedUnavailable { .. } => "pacer.shared.unavailable",
            ShuttingDown => "pacer.shutting_down",
            Internal(_) => "pacer.internal",
        }
    }

    /// How long the client should wait before trying again, when a retry could succeed.
    pub fn retry_after(&self) -> Option<Duration> {
        use Error::*;
        match self {
            // Every 429 pacer makes says when to come back, as the platform's do: when the
            // wait is unknown (a shared limit's full queue, say), in a second.
            QueueFull { retry_after, .. }
            | QueueTimeout { retry_after, .. }
            | RateLimited { retry_after, .. } => {
                Some(retry_after.unwrap_or(Duration::from_secs(1)))
            }
            // Another instance, or this one restarted, can take the request in a moment.
            ShuttingDown => Some(Duration::from_secs(1)),
            _ => None,
        }
    }

    /// Whether pacer may send the request upstream again after this error.
    ///
    /// Only a connect failure before any byte left is safe for every method: the upstream cannot
    /// have acted on a request it never saw. Everything else is either the client's fault, a
    /// decision pacer made on purpose (limits), or may have had side effects upstream.
    pub fn retryable(&self) -> bool {
        matches!(self, Error::UpstreamUnreachable { sent: false, .. })
    }
}
