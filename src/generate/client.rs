//! The generator's connections: a connector over rustls (the webpki roots, `SSL_CERT_FILE`
//! and the scenario's `tls.ca_file`) that reaches the target
//! either straight or through a forward proxy, and hyper-util's pooled legacy client on top of
//! it for the OAuth token requests. Load requests use the same connector through [`super::link`].
//!
//! Through a proxy, `http://` requests go to the proxy in absolute-form (`GET http://host/path`)
//! on pooled keep-alive connections, which is how pacer (or any forward proxy) reads them;
//! `https://` requests open a `CONNECT` tunnel and speak TLS to the target inside it.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::CertificateDer;
use tokio::net::TcpStream;

use super::cause::Failure;
use super::tunnel::{authority, ConnectTunnel};
use crate::BoxError;

/// Idle pooled connections are closed after this; below common server idle timeouts.
const POOL_IDLE: Duration = Duration::from_secs(50);
/// The largest response body kept by [`HttpClient::fetch`] (token responses).
const MAX_KEPT_BODY: usize = 1 << 20;

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("--proxy {0:?} must be an http:// URL with a host, e.g. http://127.0.0.1:8080")]
    BadProxy(String),
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("SSL_CERT_FILE: {0}")]
    CertFile(String),
}

/// A cheap-to-clone handle on one connection pool.
#[derive(Clone)]
pub struct HttpClient {
    inner: Client<Connector, Full<Bytes>>,
}

// === impl HttpClient ===

impl HttpClient {
    /// `proxy`, when given, is an `http://host:port` forward proxy every request goes through.
    pub fn new(connector: Connector) -> HttpClient {
        let inner = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_timer(TokioTimer::new())
            .build(connector);
        HttpClient { inner }
    }

    /// Sends `req` and keeps the body (up to 1 MiB), for the token endpoint.
    pub async fn fetch(&self, req: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes), BoxError> {
        let res = self.inner.request(req).await?;
        let status = res.status();
        let body = Limited::new(res.into_body(), MAX_KEPT_BODY)
            .collect()
            .await?
            .to_bytes();
        Ok((status, body))
    }
}

/// Trust for `https://` targets: the public web roots, the certificates in `SSL_CERT_FILE`
/// (as curl and OpenSSL read it) and those in the scenario's `tls.ca_file`.
fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let from_env = std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty());
    let from_env = from_env
        .map(|f| read_certificates(Path::new(&f)))
        .transpose()
        .map_err(ClientError::CertFile)?;
    // The scenario's file was read when it was checked; reading it again here keeps the two
    // sources on one path.
    let from_file = ca_file.map(read_certificates).transpose();
    let from_file = from_file.map_err(ClientError::CertFile)?;
    for cert in from_env.into_iter().chain(from_file).flatten() {
        // A certificate rustls cannot use as a root is skipped, as OpenSSL does with a bundle.
        let _ = roots.add(cert);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The PEM certificates in `file`; an error says why there are none.
pub(crate) fn read_certificates(file: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{} is not a PEM file: {e}", file.display()))?;
    match certs.is_empty() {
        true => Err(format!("{} holds no PEM certificate", file.display())),
        false => Ok(certs),
    }
}

// === impl Connector ===

/// Opens connections to the target, or to the proxy for it.
#[derive(Clone)]
pub struct Connector {
    direct: HttpsConnector<HttpConnector>,
    via: Option<Via>,
}

/// Connectors through a forward proxy.
#[derive(Clone)]
struct Via {
    proxy: Uri,
    /// To the proxy itself, for absolute-form `http://` requests.
    plain: HttpConnector,
    /// `CONNECT` through the proxy, then TLS, for `https://` requests.
    tunnel: HttpsConnector<ConnectTunnel>,
}

impl Connector {
    /// `ca_file`: certificates to trust besides the public roots and `SSL_CERT_FILE`.
    pub fn new(
        proxy: Option<&str>,
        connect_timeout: Duration,
        ca_file: Option<&Path>,
    ) -> Result<Connector, ClientError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
        let tls = tls_config(ca_file)?;
        let direct = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls.clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http.clone());
        let via = match proxy {
            None => None,
            Some(text) => {
                let proxy = proxy_uri(text)?;
                let tunnel = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(tls)
                    .https_only()
                    .enable_http1()
                    .wrap_connector(ConnectTunnel {
                        proxy: proxy.clone(),
                        http: http.clone(),
                    });
                Some(Via {
                    proxy,
                    plain: http,
                    tunnel,
                })
            }
        };
        Ok(Connector { direct, via })
    }
}

fn proxy_uri(text: &str) -> Result<Uri, ClientError> {
    let bad = || ClientError::BadProxy(text.to_owned());
    let uri: Uri = text.trim().parse().map_err(|_| bad())?;
    let plain_http = uri.scheme_str() == Some("http");
    let bare = uri.path_and_query().is_none_or(|p| p.as_str() == "/");
    match (plain_http, uri.host(), bare) {
        (true, Some(h), true) if !h.is_empty() => Ok(uri),
        _ => Err(bad()),
    }
}

type Connecting = Pin<Box<dyn Future<Output = Result<Conn, BoxError>> + Send>>;

impl tower::Service<Uri> for Connector {
    type Response = Conn;
    type Error = BoxError;
    type Future = Connecting;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Every inner connector here (HttpConnector, and the TLS and tunnel wrappers around
        // it) is always ready.
        Poll::Ready(Ok(()))
    }

    /// Every failure names what it was connecting to, for [`super::cause::explain`].
    fn call(&mut self, dst: Uri) -> Connecting {
        let https = dst.scheme_str() == Some("https");
        let to = authority(&dst, if https { 443 } else { 80 });
        match &mut self.via {
            None => {
                let connecting = self.direct.call(dst);
                Box::pin(async move {
                    let io = connecting.await.map_err(|e| Failure::boxed(to, e))?;
                    Ok(Conn::new(io, false))
                })
            }
            Some(via) if https => {
                let connecting = via.tunnel.call(dst);
                Box::pin(async move {
                    let io = connecting.await.map_err(|e| Failure::boxed(to, e))?;
                    Ok(Conn::new(io, false))
                })
            }
            Some(via) => {
                let proxy = format!("the proxy {}", authority(&via.proxy, 80));
                let connecting = via.plain.call(via.proxy.clone());
                Box::pin(async move {
                    let tcp = connecting.await.map_err(|e| Failure::boxed(proxy, e))?;
                    // Marked as proxied, the pool sends requests in absolute-form.
                    Ok(Conn::new(MaybeHttpsStream::Http(tcp), true))
                })
            }
        }
    }
}

// === impl Conn ===

/// A connection to the target or to the proxy, plain or TLS.
pub struct Conn {
    io: MaybeHttpsStream<TokioIo<TcpStream>>,
    proxied: bool,
}

impl Conn {
    fn new(io: MaybeHttpsStream<TokioIo<TcpStream>>, proxied: bool) -> Conn {
        Conn { io, proxied }
    }
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.proxied)
    }
}

impl Read for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Write for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls() {
        assert!(proxy_uri("http://127.0.0.1:8080").is_ok());
        assert!(proxy_uri("http://proxy.example.com:3128/").is_ok());
        assert!(proxy_uri("https://127.0.0.1:8080").is_err());
        assert!(proxy_uri("127.0.0.1:8080").is_err());
        assert!(proxy_uri("http://127.0.0.1:8080/path").is_err());
    }
}
