//! An intercepted CONNECT: TLS with a leaf from pacer's CA, then HTTP/1.1 through the stack.
//!
//! The requests inside carry `ConnInfo { tunnel_upstream: Some(i) }`, which the front door
//! takes as their upstream, so they are routed, shaped, retried and answered exactly like
//! absolute-form requests. A handshake that fails (a client that does not trust the CA, or
//! speaks plain HTTP inside the tunnel) ends this connection only, with a logged reason (one
//! line per reason per minute, `throttle.rs`).
//!
//! pacer's CA signs only names the client may reach through this tunnel: the CONNECT host and
//! the other hosts its upstream lists. A ClientHello for any other name (`www.google.com` inside
//! a CONNECT to the API) is refused before a certificate exists: the CA is trusted by the
//! client, and a leaf for an arbitrary name would be a certificate for a site pacer never
//! forwards to.

mod throttle;

pub use self::throttle::LogThrottle;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use rustls::server::Acceptor;
use tokio_rustls::server::TlsStream;
use tokio_rustls::LazyConfigAcceptor;

use super::frontdoor::ConnInfo;
use super::Shared;
use crate::tls::{Leaves, TlsError};

/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an intercepted connection ended before its first request.
#[derive(Debug, thiserror::Error)]
enum HandshakeError {
    #[error("no TLS handshake within {}s", HANDSHAKE_TIMEOUT.as_secs())]
    Timeout,
    #[error("TLS handshake failed: {0}")]
    Tls(#[source] std::io::Error),
    #[error(transparent)]
    Certificate(#[from] TlsError),
    #[error("the client asked (SNI) for {0:?}, which is neither the CONNECT host nor a host of its upstream; pacer signs no certificate for it")]
    NameNotAllowed(String),
}

// === impl HandshakeError ===

impl HandshakeError {
    /// The bounded label a failure is logged (and throttled) under.
    fn reason(&self) -> &'static str {
        match self {
            HandshakeError::Timeout => "timeout",
            HandshakeError::Certificate(_) => "certificate",
            HandshakeError::NameNotAllowed(_) => "name_not_allowed",
            HandshakeError::Tls(_) => match hint(self) {
                UNTRUSTED => "ca_not_trusted",
                NOT_TLS => "not_tls",
                _ => "tls",
            },
        }
    }
}

/// Serves an intercepted CONNECT once hyper hands the connection over. Boxed with an explicit
/// `Send` so the compiler need not look through the recursion (connection -> CONNECT -> this ->
/// connection) to prove it.
pub(super) fn run(
    client: OnUpgrade,
    host: String,
    leaves: Arc<Leaves>,
    info: ConnInfo,
    shared: Shared,
) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        let upgraded = match client.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                tracing::debug!(peer = %info.peer, error = %e, "CONNECT was not upgraded");
                return;
            }
        };
        let upstream = info
            .tunnel_upstream
            .expect("an intercepted CONNECT has its upstream");
        let allowed = |sni: &str| shared.connect.may_sign(upstream, &host, sni);
        match handshake(upgraded, &host, &leaves, allowed).await {
            Ok(tls) => super::serve_http(TokioIo::new(tls), info, shared).await,
            Err(e) => {
                let reason = e.reason();
                if let Some(count) = shared.connect.handshake_log.event(reason) {
                    tracing::warn!(
                        peer = %info.peer,
                        host = %host,
                        error = %e,
                        hint = hint(&e),
                        reason,
                        count,
                        "intercepted connection closed"
                    );
                }
            }
        }
    })
}

/// Reads the ClientHello first, to learn the name the client expects (SNI), then answers with a
/// certificate for that name if `allowed` says so, or for the CONNECT host when the client sent
/// no SNI. A name not allowed closes the connection without an answer.
async fn handshake(
    upgraded: Upgraded,
    connect_host: &str,
    leaves: &Leaves,
    allowed: impl Fn(&str) -> bool,
) -> Result<TlsStream<TokioIo<Upgraded>>, HandshakeError> {
    let accept = async {
        let acceptor = LazyConfigAcceptor::new(Acceptor::default(), TokioIo::new(upgraded));
        let start = acceptor.await.map_err(HandshakeError::Tls)?;
        let hello = start.client_hello();
        let name = match hello.server_name() {
            Some(sni) if !allowed(sni) => {
                return Err(HandshakeError::NameNotAllowed(sni.to_owned()))
            }
            Some(sni) => sni,
            None => connect_host,
        };
        let config = leaves.server_config(name)?;
        start.into_stream(config).await.map_err(HandshakeError::Tls)
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, accept)
        .await
        .map_err(|_| HandshakeError::Timeout)?
}

const UNTRUSTED: &str =
    "the client does not trust pacer's CA: import `pacer ca show` into its trust store";
const NOT_TLS: &str = "the client sent something other than TLS inside CONNECT (plain HTTP?)";

/// What the operator can do about a failed handshake, when the error says.
fn hint(err: &HandshakeError) -> &'static str {
    if let HandshakeError::NameNotAllowed(_) = err {
        return "add the name to the upstream's hosts if pacer should serve it";
    }
    let text = err.to_string();
    if text.contains("UnknownCA") || text.contains("BadCertificate") {
        UNTRUSTED
    } else if text.contains("InvalidContentType") || text.contains("corrupt message") {
        NOT_TLS
    } else {
        "-"
    }
}
