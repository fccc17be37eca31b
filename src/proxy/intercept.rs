//! An intercepted CONNECT: TLS with a leaf from pacer's CA, then HTTP/1.1 through the stack.
//!
//! The requests inside carry `ConnInfo { tunnel_upstream: Some(i) }`, which the front door
//! takes as their upstream, so they are routed, shaped, retried and answered exactly like
//! absolute-form requests. A handshake that fails (a client that does not trust the CA, or
//! speaks plain HTTP inside the tunnel) ends this connection only, with a logged reason.

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
        match handshake(upgraded, &host, &leaves).await {
            Ok(tls) => super::serve_http(TokioIo::new(tls), info, shared).await,
            Err(e) => tracing::warn!(
                peer = %info.peer,
                host = %host,
                error = %e,
                hint = hint(&e),
                "intercepted connection closed"
            ),
        }
    })
}

/// Reads the ClientHello first, to learn the name the client expects (SNI), then answers with a
/// certificate for that name, or for the CONNECT host when the client sent no SNI.
async fn handshake(
    upgraded: Upgraded,
    connect_host: &str,
    leaves: &Leaves,
) -> Result<TlsStream<TokioIo<Upgraded>>, HandshakeError> {
    let accept = async {
        let acceptor = LazyConfigAcceptor::new(Acceptor::default(), TokioIo::new(upgraded));
        let start = acceptor.await.map_err(HandshakeError::Tls)?;
        let hello = start.client_hello();
        let config = leaves.server_config(hello.server_name().unwrap_or(connect_host))?;
        start.into_stream(config).await.map_err(HandshakeError::Tls)
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, accept)
        .await
        .map_err(|_| HandshakeError::Timeout)?
}

/// What the operator can do about a failed handshake, when the error says.
fn hint(err: &HandshakeError) -> &'static str {
    let text = err.to_string();
    if text.contains("UnknownCA") || text.contains("BadCertificate") {
        "the client does not trust pacer's CA: import `pacer ca show` into its trust store"
    } else if text.contains("InvalidContentType") || text.contains("corrupt message") {
        "the client sent something other than TLS inside CONNECT (plain HTTP?)"
    } else {
        "-"
    }
}
