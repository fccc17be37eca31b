//! A mock served in-process on 127.0.0.1:0 and a keep-alive client for it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use pacer::mock::{MockConfig, MockRoute, WindowLimit};
use pacer::route::PathPattern;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running mock; dropping it leaves the server to the runtime's end.
pub struct Mock {
    pub addr: SocketAddr,
    client: TestClient,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

/// A pooled HTTP/1.1 client bound to one mock.
#[derive(Clone)]
pub struct TestClient {
    addr: SocketAddr,
    inner: Client<HttpConnector, Full<Bytes>>,
}

/// A whole response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

// === impl Mock ===

impl Mock {
    pub async fn start(config: MockConfig) -> Mock {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(pacer::mock::serve(listener, config, shutdown));
        let inner = Client::builder(TokioExecutor::new()).build_http();
        Mock {
            addr,
            client: TestClient { addr, inner },
            stop,
            task,
        }
    }

    pub fn clone_client(&self) -> TestClient {
        self.client.clone()
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        self.client.send(method, path, headers, body).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.client.get(path, token).await
    }

    pub async fn stats(&self) -> Value {
        let reply = self.get("/__mock/stats", None).await;
        assert_eq!(reply.status, StatusCode::OK);
        reply.json()
    }

    /// Polls the stats until exactly `n` API requests are in flight (each poll is a round trip
    /// to the mock, so this waits on the mock's own report, not on a guessed duration).
    pub async fn wait_for_in_flight(&self, n: u64) {
        let give_up = std::time::Instant::now() + Duration::from_secs(10);
        while self.stats().await["in_flight"].as_u64() != Some(n) {
            assert!(
                std::time::Instant::now() < give_up,
                "never saw {n} requests in flight"
            );
            tokio::task::yield_now().await;
        }
    }

    /// Resolves the shutdown future and waits for `serve` to return.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await.expect("serve panicked")
    }
}

// === impl TestClient ===

impl TestClient {
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req.body(Full::new(body.into())).unwrap();
        let response = self.inner.request(req).await.expect("the mock answers");
        Reply::read(response).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer
            .iter()
            .map(|b| ("authorization", b.as_str()))
            .collect();
        self.send(Method::GET, path, &headers, Bytes::new()).await
    }
}

// === impl Reply ===

impl Reply {
    async fn read<B>(response: http::Response<B>) -> Reply
    where
        B: hyper::body::Body,
        B::Error: std::fmt::Debug,
    {
        let (parts, body) = response.into_parts();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.expect("whole body").to_bytes(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// `Basic base64(id:secret)`.
pub fn basic(id: &str, secret: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{id}:{secret}");
    let mut out = String::new();
    for chunk in input.as_bytes().chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            match i <= chunk.len() {
                true => out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char),
                false => out.push('='),
            }
        }
    }
    format!("Basic {out}")
}

/// GETs `url` over HTTPS, trusting only the certificate in `pem`.
pub async fn https_get(pem: &str, url: &str) -> Reply {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .build();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
    let req = Request::get(url).body(Full::new(Bytes::new())).unwrap();
    Reply::read(
        client
            .request(req)
            .await
            .expect("the mock answers over TLS"),
    )
    .await
}

/// `requests` per `secs` seconds.
pub fn limit(requests: u32, secs: u64) -> Option<WindowLimit> {
    Some(WindowLimit {
        requests,
        window: Duration::from_secs(secs),
    })
}

/// A route for `METHOD /path` with no limits yet.
pub fn route(pattern: &str) -> MockRoute {
    let (method, path) = pattern.split_once(' ').unwrap();
    MockRoute {
        pattern: pattern.into(),
        method: Some(method.parse().unwrap()),
        path: PathPattern::parse(path).unwrap(),
        rate: None,
        concurrency: None,
        latency: None,
    }
}
