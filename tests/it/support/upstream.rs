//! A small upstream for CONNECT, TLS and upgrade tests: echoes requests as JSON, and echoes
//! WebSocket messages on `/ws`. Optionally over TLS with its own self-signed certificate.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

/// Names the upstream's certificate is valid for; the tests CONNECT to these.
pub const UPSTREAM_NAMES: [&str; 4] = ["api.test", "tunnel.test", "localhost", "127.0.0.1"];

pub struct TestUpstream {
    pub addr: SocketAddr,
    /// The self-signed certificate (PEM), when serving TLS; also written to `cert_file`.
    pub cert_pem: Option<String>,
    pub cert_file: Option<PathBuf>,
    task: JoinHandle<()>,
}

impl TestUpstream {
    /// `http://addr` or `https://addr`.
    pub fn base_url(&self) -> String {
        let scheme = if self.cert_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }
}

impl Drop for TestUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the upstream on 127.0.0.1:0; with `tls`, over HTTPS with a fresh certificate.
pub async fn start_upstream(tls: bool) -> TestUpstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (acceptor, cert_pem, cert_file) = if tls {
        let (acceptor, pem) = self_signed_acceptor();
        let file = super::temp_dir("upstream").join("upstream-ca.pem");
        std::fs::write(&file, &pem).unwrap();
        (Some(acceptor), Some(pem), Some(file))
    } else {
        (None, None, None)
    };
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                match acceptor {
                    Some(acceptor) => {
                        if let Ok(tls) = acceptor.accept(stream).await {
                            serve(tls).await;
                        }
                    }
                    None => serve(stream).await,
                }
            });
        }
    });
    TestUpstream {
        addr,
        cert_pem,
        cert_file,
        task,
    }
}

fn self_signed_acceptor() -> (tokio_rustls::TlsAcceptor, String) {
    let names: Vec<String> = UPSTREAM_NAMES.iter().map(|s| s.to_string()).collect();
    let certified = rcgen::generate_simple_self_signed(names).unwrap();
    let pem = certified.cert.pem();
    let key =
        PrivateKeyDer::from_pem_slice(certified.signing_key.serialize_pem().as_bytes()).unwrap();
    let cert = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    (tokio_rustls::TlsAcceptor::from(Arc::new(config)), pem)
}

async fn serve<S>(io: S)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(answer);
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades()
        .await;
}

async fn answer(mut req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let key = req.headers().get("sec-websocket-key").cloned();
    if let (Some(key), "/ws") = (key, req.uri().path()) {
        let on = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(upgraded) = on.await {
                echo_ws(TokioIo::new(upgraded)).await;
            }
        });
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        return Ok(Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-accept", accept)
            .body(Full::default())
            .unwrap());
    }
    let mut headers = serde_json::Map::new();
    for name in req.headers().keys() {
        let values: Vec<_> = req
            .headers()
            .get_all(name)
            .iter()
            .map(|v| serde_json::Value::from(v.to_str().unwrap_or("?")))
            .collect();
        headers.insert(name.as_str().to_owned(), values.into());
    }
    let doc = serde_json::json!({
        "method": req.method().as_str(),
        "path": req.uri().path(),
        "headers": headers,
    });
    Ok(Response::builder()
        .header("content-type", "application/json")
        .header("x-test-upstream", "1")
        .body(Full::new(Bytes::from(doc.to_string())))
        .unwrap())
}

async fn echo_ws<S: AsyncRead + AsyncWrite + Unpin>(io: S) {
    let mut ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
    while let Some(Ok(msg)) = ws.next().await {
        if msg.is_close() {
            break;
        }
        if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
            break;
        }
    }
}
